-- Question: how many persons were observed continuously from 2020 through 2023, by race?
SELECT p.race_concept_id, COUNT(*) AS persons
FROM observation_period AS op
JOIN person AS p ON p.person_id = op.person_id
WHERE op.observation_period_start_date <= DATE '2020-01-01'
  AND op.observation_period_end_date >= DATE '2023-12-31'
GROUP BY p.race_concept_id
ORDER BY p.race_concept_id
