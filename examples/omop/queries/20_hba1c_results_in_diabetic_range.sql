-- Question: how many HbA1c results (3004410) were in the diabetic range (>= 6.5%), and what was their mean?
SELECT COUNT(*) AS results, AVG(value_as_number) AS mean_hba1c
FROM measurement
WHERE measurement_concept_id = 3004410 AND value_as_number >= 6.5
