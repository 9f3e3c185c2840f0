-- Question: how many persons were observed continuously from 2020 through 2023, by race?
SELECT race_concept_id, COUNT(*) AS persons
FROM observation_period
JOIN person USING (person_id)
WHERE observation_period_start_date <= DATE '2020-01-01'
  AND observation_period_end_date >= DATE '2023-12-31'
GROUP BY race_concept_id
ORDER BY race_concept_id
