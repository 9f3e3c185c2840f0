-- Question: how are persons distributed over recorded race and ethnicity (0: not recorded)?
SELECT race_concept_id, ethnicity_concept_id, COUNT(*) AS persons
FROM person
GROUP BY race_concept_id, ethnicity_concept_id
ORDER BY race_concept_id, ethnicity_concept_id
