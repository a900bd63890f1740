"""Intent detection: a configurable taxonomy, an embedding classifier, and pattern entities."""

from r1agent.intents.classifier import IntentClassifier, Prediction
from r1agent.intents.entities import extract_entities, wants_human
from r1agent.intents.taxonomy import Taxonomy, load_taxonomy

__all__ = ["IntentClassifier", "Prediction", "Taxonomy", "extract_entities", "load_taxonomy", "wants_human"]
