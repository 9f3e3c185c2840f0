-- Question: how many results of each measurement were recorded, and what is their mean value?
SELECT measurement_concept_id, COUNT(*) AS results, AVG(value_as_number) AS mean_value
FROM measurement
GROUP BY measurement_concept_id
ORDER BY measurement_concept_id
