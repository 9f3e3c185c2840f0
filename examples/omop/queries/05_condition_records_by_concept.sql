-- Question: how many diagnosis records of each study condition were made in 2015-2024?
SELECT condition_concept_id, COUNT(*) AS records
FROM condition_occurrence
GROUP BY condition_concept_id
ORDER BY records DESC
