-- Question: how many persons does the network hold, by sex and year of birth?
SELECT gender_concept_id, year_of_birth, COUNT(*) AS persons
FROM person
GROUP BY gender_concept_id, year_of_birth
ORDER BY gender_concept_id, year_of_birth
