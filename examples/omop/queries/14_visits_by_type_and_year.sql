-- Question: how do visits of each type change from year to year?
SELECT visit_concept_id, year(visit_start_date) AS visit_year, COUNT(*) AS visits
FROM visit_occurrence
GROUP BY visit_concept_id, visit_year
ORDER BY visit_concept_id, visit_year
