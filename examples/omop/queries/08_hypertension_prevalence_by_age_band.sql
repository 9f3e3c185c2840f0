-- Question: how does the prevalence of essential hypertension (320128) rise with age?
WITH htn AS (
    SELECT DISTINCT person_id, condition_concept_id
    FROM condition_occurrence
    WHERE condition_concept_id = 320128
)
SELECT
    CASE
        WHEN 2024 - p.year_of_birth < 40 THEN '18-39'
        WHEN 2024 - p.year_of_birth < 65 THEN '40-64'
        ELSE '65+'
    END AS age_band,
    COUNT(*) AS persons,
    COUNT(htn.condition_concept_id) AS with_hypertension
FROM person AS p
LEFT JOIN htn ON htn.person_id = p.person_id
GROUP BY age_band
ORDER BY age_band
