-- Question: how many persons entered observation in each year (network growth)?
SELECT year(observation_period_start_date) AS start_year, COUNT(*) AS persons
FROM observation_period
GROUP BY start_year
ORDER BY start_year
