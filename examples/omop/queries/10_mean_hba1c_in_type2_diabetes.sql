-- Question: what is the mean HbA1c (3004410, %) of persons with type 2 diabetes, against the others?
WITH t2d AS (
    SELECT DISTINCT person_id, condition_concept_id
    FROM condition_occurrence
    WHERE condition_concept_id = 201826
)
SELECT
    t2d.condition_concept_id IS NOT NULL AS has_t2d,
    COUNT(*) AS results,
    AVG(m.value_as_number) AS mean_hba1c
FROM measurement AS m
LEFT JOIN t2d ON t2d.person_id = m.person_id
WHERE m.measurement_concept_id = 3004410
GROUP BY has_t2d
ORDER BY has_t2d
