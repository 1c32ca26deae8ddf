"""The demo's feature store: patient ids and their features, from the
breast cancer data set that ships with python3-sklearn."""

from sklearn.datasets import load_breast_cancer

_DATA = load_breast_cancer()


def patient_id(row):
    return "patient_%04d" % row


def features(pid):
    """The feature row of a patient id, or None."""
    if not pid.startswith("patient_") or not pid[8:].isdigit():
        return None
    row = int(pid[8:])
    return _DATA.data[row] if row < len(_DATA.data) else None


def rows():
    return range(len(_DATA.data))


def answer(model, name, x):
    """The prediction for one feature row, as stored and served."""
    score = float(model.predict_proba([x])[0][1])
    return {"score": round(score, 4),
            "label": "benign" if score >= 0.5 else "malignant",
            "model": name}
