-- Question: what are the mean, standard deviation and median of systolic blood pressure (3004249) in hypertension?
SELECT
    AVG(value_as_number) AS mean_sbp,
    STDDEV(value_as_number) AS sd_sbp,
    MEDIAN(value_as_number) AS median_sbp
FROM measurement
WHERE measurement_concept_id = 3004249
  AND person_id IN (SELECT person_id FROM condition_occurrence WHERE condition_concept_id = 320128)
