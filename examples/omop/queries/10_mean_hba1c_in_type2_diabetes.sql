-- Question: what is the mean HbA1c (3004410, %) of persons with type 2 diabetes, against the others?
SELECT
    m.person_id IN (
        SELECT person_id FROM condition_occurrence WHERE condition_concept_id = 201826
    ) AS has_t2d,
    COUNT(*) AS results,
    AVG(m.value_as_number) AS mean_hba1c
FROM measurement AS m
WHERE m.measurement_concept_id = 3004410
GROUP BY has_t2d
ORDER BY has_t2d
