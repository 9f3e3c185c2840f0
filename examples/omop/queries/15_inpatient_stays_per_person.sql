-- Question: how many inpatient stays (9201) ended in 2024, and how many admissions per person admitted?
SELECT
    COUNT(*) AS stays,
    COUNT(DISTINCT person_id) AS persons_admitted,
    COUNT(*) / COUNT(DISTINCT person_id) AS stays_per_person
FROM visit_occurrence
WHERE visit_concept_id = 9201 AND visit_end_date >= DATE '2024-01-01'
