-- Question: what share of persons has a recorded diagnosis of type 2 diabetes (201826), by sex?
WITH t2d AS (
    SELECT DISTINCT person_id, condition_concept_id
    FROM condition_occurrence
    WHERE condition_concept_id = 201826
)
SELECT
    p.gender_concept_id,
    COUNT(*) AS persons,
    COUNT(t2d.condition_concept_id) AS with_t2d,
    COUNT(t2d.condition_concept_id) / COUNT(*) AS prevalence
FROM person AS p
LEFT JOIN t2d ON t2d.person_id = p.person_id
GROUP BY p.gender_concept_id
ORDER BY p.gender_concept_id
