-- Question: among persons with type 2 diabetes, how many were prescribed each glucose-lowering drug?
WITH t2d AS (
    SELECT DISTINCT person_id FROM condition_occurrence WHERE condition_concept_id = 201826
)
SELECT de.drug_concept_id, COUNT(DISTINCT de.person_id) AS persons
FROM drug_exposure AS de
JOIN t2d ON t2d.person_id = de.person_id
WHERE de.drug_concept_id IN (1503297, 1502905, 1580747, 45774751)
GROUP BY de.drug_concept_id
ORDER BY persons DESC
