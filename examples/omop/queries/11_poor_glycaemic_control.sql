-- Question: among persons with type 2 diabetes and an HbA1c result, what share ever had HbA1c >= 8%?
SELECT
    COUNT(DISTINCT m.person_id) AS tested,
    COUNT(DISTINCT m.person_id) FILTER (WHERE m.value_as_number >= 8) AS above_8
FROM measurement AS m
JOIN condition_occurrence AS co ON co.person_id = m.person_id
WHERE m.measurement_concept_id = 3004410 AND co.condition_concept_id = 201826
