"""Model types: the contract every model type fulfils, and the registry that finds them."""

from marketpredictor_train.models.base import ModelType
from marketpredictor_train.models.registry import available_model_types, get_model_type

__all__ = ["ModelType", "available_model_types", "get_model_type"]
