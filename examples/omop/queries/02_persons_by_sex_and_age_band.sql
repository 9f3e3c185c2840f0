-- Question: how many persons, by sex and age band (age reached in 2024)?
SELECT
    gender_concept_id,
    CASE
        WHEN 2024 - year_of_birth < 40 THEN '18-39'
        WHEN 2024 - year_of_birth < 65 THEN '40-64'
        ELSE '65+'
    END AS age_band,
    COUNT(*) AS persons
FROM person
GROUP BY gender_concept_id, age_band
ORDER BY gender_concept_id, age_band
