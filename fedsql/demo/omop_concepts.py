"""The OMOP example's vocabulary and ground truth: standard concept ids and the generator's model.

Concept ids are real OMOP standard concepts (Athena): gender and race from the OMOP Gender and
Race vocabularies, visits from the Visit vocabulary, conditions from SNOMED, drugs as RxNorm
ingredients, measurements from LOINC with UCUM units. Real CDMs record drugs as clinical drugs
and studies roll them up to ingredients through ``concept_ancestor``; this example stores the
ingredient directly, so a federation contract can declare a small public domain for it.

The model constants below are the ground truth the synthetic data follow (see
:mod:`fedsql.demo.omop`): a network query's answer can be checked against them.
"""

from __future__ import annotations

import datetime as dt

#: OMOP Gender: MALE, FEMALE.
MALE, FEMALE = 8507, 8532
#: OMOP Race: 0 (no matching concept: race not recorded), Asian, Black or African American, White.
RACES: tuple[int, ...] = (0, 8515, 8516, 8527)
#: OMOP Ethnicity: 0 (not recorded), Hispanic or Latino, Not Hispanic or Latino.
ETHNICITIES: tuple[int, ...] = (0, 38003563, 38003564)
#: OMOP Visit: Inpatient Visit, Outpatient Visit, Emergency Room Visit.
INPATIENT, OUTPATIENT, EMERGENCY = 9201, 9202, 9203
VISITS: tuple[int, ...] = (INPATIENT, OUTPATIENT, EMERGENCY)

#: SNOMED condition concepts (chronic first, then the two acute ones).
T2D = 201826  # Type 2 diabetes mellitus
HYPERTENSION = 320128  # Essential hypertension
HYPERLIPIDEMIA = 432867  # Hyperlipidemia
CAD = 317576  # Coronary arteriosclerosis
HEART_FAILURE = 316139  # Heart failure
AFIB = 313217  # Atrial fibrillation
CKD = 46271022  # Chronic kidney disease
COPD = 255573  # Chronic obstructive lung disease
ASTHMA = 317009  # Asthma
DEPRESSION = 440383  # Depressive disorder
OSTEOARTHRITIS = 80180  # Osteoarthritis
PHARYNGITIS = 4112343  # Acute viral pharyngitis
BRONCHITIS = 260139  # Acute bronchitis

#: RxNorm ingredient concepts.
METFORMIN = 1503297
INSULIN_GLARGINE = 1502905
SITAGLIPTIN = 1580747
EMPAGLIFLOZIN = 45774751
LISINOPRIL = 1308216
AMLODIPINE = 1332418
HYDROCHLOROTHIAZIDE = 974166
ATORVASTATIN = 1545958
METOPROLOL = 1307046
APIXABAN = 43013024
ALBUTEROL = 1154343
SERTRALINE = 739138
AMOXICILLIN = 1713332

#: LOINC measurement concepts.
HBA1C = 3004410  # Hemoglobin A1c/Hemoglobin.total in Blood (4548-4)
LDL = 3028437  # Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation (13457-7)
SYSTOLIC_BP = 3004249  # Systolic blood pressure (8480-6)
DIASTOLIC_BP = 3012888  # Diastolic blood pressure (8462-4)
BMI = 3038553  # Body mass index (39156-5)
CREATININE = 3016723  # Creatinine [Mass/volume] in Serum or Plasma (2160-0)
#: UCUM unit concepts: percent, milligram per deciliter, millimeter mercury column, kg/m2.
PERCENT, MG_PER_DL, MM_HG, KG_PER_M2 = 8554, 8840, 8876, 9531

#: Every concept of each coded column, with its name: the contract's public domains.
CONDITION_NAMES: dict[int, str] = {
    T2D: "Type 2 diabetes mellitus",
    HYPERTENSION: "Essential hypertension",
    HYPERLIPIDEMIA: "Hyperlipidemia",
    CAD: "Coronary arteriosclerosis",
    HEART_FAILURE: "Heart failure",
    AFIB: "Atrial fibrillation",
    CKD: "Chronic kidney disease",
    COPD: "Chronic obstructive lung disease",
    ASTHMA: "Asthma",
    DEPRESSION: "Depressive disorder",
    OSTEOARTHRITIS: "Osteoarthritis",
    PHARYNGITIS: "Acute viral pharyngitis",
    BRONCHITIS: "Acute bronchitis",
}
DRUG_NAMES: dict[int, str] = {
    METFORMIN: "metformin",
    INSULIN_GLARGINE: "insulin glargine",
    SITAGLIPTIN: "sitagliptin",
    EMPAGLIFLOZIN: "empagliflozin",
    LISINOPRIL: "lisinopril",
    AMLODIPINE: "amlodipine",
    HYDROCHLOROTHIAZIDE: "hydrochlorothiazide",
    ATORVASTATIN: "atorvastatin",
    METOPROLOL: "metoprolol",
    APIXABAN: "apixaban",
    ALBUTEROL: "albuterol",
    SERTRALINE: "sertraline",
    AMOXICILLIN: "amoxicillin",
}
#: Measurement concept -> (name, unit concept).
MEASUREMENTS: dict[int, tuple[str, int]] = {
    HBA1C: ("HbA1c (%)", PERCENT),
    LDL: ("LDL cholesterol (mg/dL)", MG_PER_DL),
    SYSTOLIC_BP: ("Systolic blood pressure (mmHg)", MM_HG),
    DIASTOLIC_BP: ("Diastolic blood pressure (mmHg)", MM_HG),
    BMI: ("Body mass index (kg/m2)", KG_PER_M2),
    CREATININE: ("Creatinine (mg/dL)", MG_PER_DL),
}
UNITS: tuple[int, ...] = (PERCENT, MG_PER_DL, MM_HG, KG_PER_M2)

#: Every date of every table lies in [DATE_FIRST, DATE_LAST]; ages are taken at REFERENCE_YEAR.
DATE_FIRST = dt.date(2015, 1, 1)
DATE_LAST = dt.date(2024, 12, 31)
REFERENCE_YEAR = 2024
#: Observation periods start by LAST_START; OPEN_SHARE of them run to DATE_LAST.
LAST_START = dt.date(2021, 12, 31)
OPEN_SHARE = 0.7
#: Ages at REFERENCE_YEAR (adults only), so year_of_birth lies in [1926, 2006].
AGE_RANGE = (18, 98)

#: Chronic conditions: logit P(condition) = intercept + sum of coef * feature, where the features
#: are age (years at REFERENCE_YEAR), bmi (the person's latent BMI, kg/m2), male, female (0/1)
#: and earlier conditions of this table (0/1). Order matters: a condition may depend only on
#: conditions listed before it.
CHRONIC_MODEL: tuple[tuple[int, float, dict[str | int, float]], ...] = (
    (T2D, -8.0, {"age": 0.05, "bmi": 0.12}),
    (HYPERTENSION, -6.0, {"age": 0.065, "bmi": 0.06, T2D: 0.7}),
    (HYPERLIPIDEMIA, -4.5, {"age": 0.045, T2D: 0.6}),
    (CAD, -8.2, {"age": 0.08, "male": 0.6, T2D: 0.6, HYPERTENSION: 0.5}),
    (HEART_FAILURE, -8.6, {"age": 0.075, CAD: 1.2}),
    (AFIB, -9.3, {"age": 0.09, "male": 0.4}),
    (CKD, -7.8, {"age": 0.07, T2D: 1.0, HYPERTENSION: 0.7}),
    (COPD, -6.3, {"age": 0.06}),
    (ASTHMA, -2.6, {}),
    (DEPRESSION, -2.7, {"female": 0.5}),
    (OSTEOARTHRITIS, -6.5, {"age": 0.08, "bmi": 0.04}),
)
#: Acute conditions: episodes per observed year (Poisson).
ACUTE_RATES: dict[int, float] = {PHARYNGITIS: 0.06, BRONCHITIS: 0.04}
#: Extra records of a chronic condition after its first (Poisson mean), e.g. at follow-up visits.
CHRONIC_REPEAT_MEAN = 1.0

#: Drugs: (ingredient, indications, probability of treatment given any indication, days supply).
DRUG_MODEL: tuple[tuple[int, tuple[int, ...], float, int], ...] = (
    (METFORMIN, (T2D,), 0.75, 90),
    (INSULIN_GLARGINE, (T2D,), 0.20, 30),
    (SITAGLIPTIN, (T2D,), 0.12, 90),
    (EMPAGLIFLOZIN, (T2D,), 0.15, 90),
    (LISINOPRIL, (HYPERTENSION,), 0.45, 90),
    (AMLODIPINE, (HYPERTENSION,), 0.35, 90),
    (HYDROCHLOROTHIAZIDE, (HYPERTENSION,), 0.25, 90),
    (ATORVASTATIN, (HYPERLIPIDEMIA, CAD), 0.60, 90),
    (METOPROLOL, (CAD, HEART_FAILURE, AFIB), 0.55, 90),
    (APIXABAN, (AFIB,), 0.60, 30),
    (ALBUTEROL, (ASTHMA, COPD), 0.70, 30),
    (SERTRALINE, (DEPRESSION,), 0.50, 30),
    (AMOXICILLIN, (PHARYNGITIS, BRONCHITIS), 0.40, 10),
)
#: Records of one treated drug: 1 + Poisson(DRUG_REFILL_MEAN).
DRUG_REFILL_MEAN = 2.0

#: Visits: 1 + Poisson(rate * observed years * (1 + VISIT_CHRONIC_FACTOR * chronic conditions)).
VISIT_CHRONIC_FACTOR = 0.3
#: Probability that a visit is inpatient: base + per heart failure / COPD / CKD; emergency: fixed.
INPATIENT_BASE = 0.03
INPATIENT_EXTRA: dict[int, float] = {HEART_FAILURE: 0.05, COPD: 0.03, CKD: 0.02}
EMERGENCY_SHARE = 0.09
#: Inpatient stays last 1 + Poisson(LOS_EXTRA_MEAN) days; other visits end the day they start.
LOS_EXTRA_MEAN = 3.0

#: Mean and sd of HbA1c (%) without and with type 2 diabetes; the share of persons without
#: diabetes who have one HbA1c test; tests per person with diabetes: 1 + Poisson(mean).
HBA1C_MEAN: dict[bool, float] = {False: 5.4, True: 7.6}
HBA1C_SD: dict[bool, float] = {False: 0.35, True: 1.2}
HBA1C_SCREEN_SHARE = 0.25
HBA1C_TESTS_MEAN = 2.5
#: Systolic blood pressure: 122 + 0.35 * (age - 50) + SBP_HYPERTENSION_EFFECT if hypertensive.
SBP_HYPERTENSION_EFFECT = 14.0
#: Creatinine (mg/dL): mean without chronic kidney disease by sex, and with it.
CREATININE_MEAN: dict[str, float] = {"male": 0.95, "female": 0.75, "ckd": 1.9}

#: The contract's numeric bounds of measurement.value_as_number; every value lies within.
VALUE_BOUNDS = (0.0, 250.0)
#: The contract's max_rows_per_unit (k) of each table; the data never exceed it.
ROW_CAPS: dict[str, int] = {
    "person": 1,
    "observation_period": 1,
    "visit_occurrence": 40,
    "condition_occurrence": 24,
    "drug_exposure": 30,
    "measurement": 24,
}
