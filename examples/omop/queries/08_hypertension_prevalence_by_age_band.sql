-- Question: how does the prevalence of essential hypertension (320128) rise with age?
SELECT
    CASE
        WHEN 2024 - p.year_of_birth < 40 THEN '18-39'
        WHEN 2024 - p.year_of_birth < 65 THEN '40-64'
        ELSE '65+'
    END AS age_band,
    COUNT(*) AS persons,
    COUNT(*) FILTER (
        WHERE EXISTS (
            SELECT 1
            FROM condition_occurrence AS co
            WHERE co.person_id = p.person_id AND co.condition_concept_id = 320128
        )
    ) AS with_hypertension
FROM person AS p
GROUP BY age_band
ORDER BY age_band
