"""Fit the demo federation's diabetes model across four clinics and compare it with the truth.

Run with ``python examples/diabetes_risk.py``. The demo clinics' patients were generated from a
known logistic model of diabetes in age and BMI (``fedsql.demo.generator``). Here that model is
fitted with ``LOGISTIC_REGRESSION`` over all four clinics without pooling a single row: each
Newton round moves only noisy, securely summed gradients and Hessians. The script prints the
coefficients with their 95% intervals beside the generator's true values, then uses the fitted
model locally to predict the risk of a few example patients.
"""

from __future__ import annotations

import pandas as pd

import fedsql
from fedsql.demo.generator import (
    DIABETES_COEF_AGE,
    DIABETES_COEF_BMI,
    DIABETES_INTERCEPT,
    diabetes_probability,
)

TRUTH = {"intercept": DIABETES_INTERCEPT, "age": DIABETES_COEF_AGE, "bmi": DIABETES_COEF_BMI}


def main() -> None:
    """Fit, compare with the truth, predict."""
    with fedsql.connect("demo", analyst="diabetes-risk") as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 8) AS risk FROM patients",
            epsilon=1.0,
        )
        assert cur.privacy is not None
        report = cur.privacy
        (model,) = cur.fetch_models()
        print("diabetes risk: logit P(diabetic) = intercept + age * b_age + bmi * b_bmi")
        print(f"{'term':<10}{'estimate':>12}{'95% interval':>26}{'truth':>10}  covered")
        terms = [("intercept", model.intercept, model.intercept_std_error)]
        terms += [(f, model.coefficients[f], model.std_errors[f]) for f in model.features]
        for name, value, se in terms:
            low, high = value - 1.96 * se, value + 1.96 * se
            truth = TRUTH[name]
            interval = f"[{low:.4f}, {high:.4f}]"
            print(
                f"{name:<10}{value:>12.4f}{interval:>26}{truth:>10.4f}  "
                f"{'yes' if low <= truth <= high else 'no'}"
            )
        details = report.details["model"]
        print(
            f"fitted on {model.n:,} patients in {details['rounds']} rounds; "
            f"epsilon spent at each clinic: {report.epsilon} (delta {report.delta:g})"
        )
        print("answered:", report.answered())

        patients = pd.DataFrame({"age": [30, 50, 70], "bmi": [22.0, 30.0, 38.0]})
        patients["predicted risk"] = model.predict(patients).round(3)
        patients["true risk"] = diabetes_probability(patients["age"], patients["bmi"]).round(3)
        print("predicted locally for three example patients:")
        print(patients.to_string(index=False))


if __name__ == "__main__":
    main()
