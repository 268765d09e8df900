"""The chain as an MLflow model, logged from code (``mlflow.pyfunc.log_model(python_model=<this file>)``).

Loading ``models:/ragate-chain@champion`` builds the chain from the project's configuration
(``model_config`` may override fields) and answers a list of questions or a DataFrame
with a ``question`` column.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class RagChainModel(PythonModel):
    """A pyfunc wrapper around :func:`rag.chain.build_chain`."""

    def load_context(self, context: Any) -> None:
        from rag.chain import build_chain
        from rag.config import load_config

        overrides = dict(getattr(context, "model_config", None) or {})
        self.chain = build_chain(load_config(**overrides))

    def predict(
        self, context: Any, model_input: Any, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        if hasattr(model_input, "to_dict"):  # a DataFrame
            questions = [str(q) for q in model_input["question"]]
        elif isinstance(model_input, str):
            questions = [model_input]
        else:
            questions = [str(q) for q in model_input]
        return [self.chain.invoke(q).to_row() for q in questions]


mlflow.models.set_model(RagChainModel())
