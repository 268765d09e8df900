"""ragate from a notebook: answers in a DataFrame, evaluated against the ci profile.

Run it from the project folder (each step is one notebook cell):

    .venv/bin/python examples/evaluate_dataframe.py [REPORT_DIR]

``answers.csv`` holds answers a chatbot gave, one row each, with the contexts it retrieved
as a JSON list in one cell. Nothing is generated: the answers are scored offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from gates import evaluate

HERE = Path(__file__).parent
report_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("reports/notebook")

# 1. Load the answers as a DataFrame (any DataFrame with the columns of `ragate score` rows).
df = pd.read_csv(HERE / "answers.csv")
print(df[["id", "question", "answer"]].to_string(index=False))

# 2. Score every answer and decide the ci profile's gates.
ev = evaluate(df, profile="ci")
print(ev)
print(ev.gates[["gate", "observed", "threshold", "passed"]].to_string(index=False))

# 3. The worst cases of one metric, with the metric's reason.
worst = ev.worst("faithfulness", n=3)
print(worst[["answer", "faithfulness", "faithfulness_reason"]].to_string())

# 4. The reports the gate run writes (JSON, Markdown, JUnit XML and the HTML page).
for path in ev.write(report_dir):
    print("wrote", path)
print("verdict:", "PASS" if ev.passed else "FAIL")
