-- Question: how many prescriptions of each study drug were written, and for how many days on average?
SELECT drug_concept_id, COUNT(*) AS prescriptions, AVG(days_supply) AS mean_days_supply
FROM drug_exposure
GROUP BY drug_concept_id
ORDER BY prescriptions DESC
