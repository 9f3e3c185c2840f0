-- Question: how many persons have at least one record of each study condition (prevalence numerators)?
SELECT condition_concept_id, COUNT(DISTINCT person_id) AS persons
FROM condition_occurrence
GROUP BY condition_concept_id
ORDER BY persons DESC
