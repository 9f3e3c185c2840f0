-- Question: how many inpatient (9201), outpatient (9202) and emergency (9203) visits started in 2023?
SELECT visit_concept_id, COUNT(*) AS visits
FROM visit_occurrence
WHERE visit_start_date >= DATE '2023-01-01' AND visit_start_date < DATE '2024-01-01'
GROUP BY visit_concept_id
ORDER BY visit_concept_id
