-- Question: how many days of metformin (1503297) supply were prescribed in 2024, and in how many prescriptions?
SELECT COUNT(*) AS prescriptions, SUM(days_supply) AS days_supplied
FROM drug_exposure
WHERE drug_concept_id = 1503297
  AND drug_exposure_start_date BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'
