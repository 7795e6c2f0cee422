"""The discovery document of the ``commentanalyzer`` v1alpha1 API, as this server
speaks it.

Google's client libraries build their methods from such a document.
google-api-python-client 2.x no longer ships the commentanalyzer document, so
the server publishes its own at ``/$discovery/rest?version=v1alpha1`` (Google's
path) with ``rootUrl`` set to the server that answered.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "v1alpha1"


def _score() -> dict[str, Any]:
    return {
        "id": "Score",
        "type": "object",
        "properties": {
            "value": {"type": "number", "format": "float"},
            "type": {"type": "string", "enum": ["SCORE_TYPE_UNSPECIFIED", "PROBABILITY"]},
        },
    }


SCHEMAS: dict[str, Any] = {
    "TextEntry": {
        "id": "TextEntry",
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "type": {"type": "string", "enum": ["TEXT_TYPE_UNSPECIFIED", "PLAIN_TEXT"]},
        },
    },
    "Context": {
        "id": "Context",
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": {"$ref": "TextEntry"}},
            "articleAndParentComment": {"type": "object"},
        },
    },
    "AttributeParameters": {
        "id": "AttributeParameters",
        "type": "object",
        "properties": {
            "scoreType": {"type": "string", "enum": ["SCORE_TYPE_UNSPECIFIED", "PROBABILITY"]},
            "scoreThreshold": {"type": "number", "format": "float"},
        },
    },
    "AnalyzeCommentRequest": {
        "id": "AnalyzeCommentRequest",
        "type": "object",
        "properties": {
            "comment": {"$ref": "TextEntry"},
            "context": {"$ref": "Context"},
            "requestedAttributes": {
                "type": "object",
                "additionalProperties": {"$ref": "AttributeParameters"},
            },
            "spanAnnotations": {"type": "boolean"},
            "languages": {"type": "array", "items": {"type": "string"}},
            "doNotStore": {"type": "boolean"},
            "clientToken": {"type": "string"},
            "sessionId": {"type": "string"},
            "communityId": {"type": "string"},
            "dropUnsupportedAttributes": {"type": "boolean"},
        },
    },
    "Score": _score(),
    "SpanScore": {
        "id": "SpanScore",
        "type": "object",
        "properties": {
            "begin": {"type": "integer", "format": "int32"},
            "end": {"type": "integer", "format": "int32"},
            "score": {"$ref": "Score"},
        },
    },
    "AttributeScores": {
        "id": "AttributeScores",
        "type": "object",
        "properties": {
            "summaryScore": {"$ref": "Score"},
            "spanScores": {"type": "array", "items": {"$ref": "SpanScore"}},
        },
    },
    "AnalyzeCommentResponse": {
        "id": "AnalyzeCommentResponse",
        "type": "object",
        "properties": {
            "attributeScores": {
                "type": "object",
                "additionalProperties": {"$ref": "AttributeScores"},
            },
            "languages": {"type": "array", "items": {"type": "string"}},
            "detectedLanguages": {"type": "array", "items": {"type": "string"}},
            "clientToken": {"type": "string"},
        },
    },
    "SuggestCommentScoreRequest": {
        "id": "SuggestCommentScoreRequest",
        "type": "object",
        "properties": {
            "comment": {"$ref": "TextEntry"},
            "context": {"$ref": "Context"},
            "attributeScores": {
                "type": "object",
                "additionalProperties": {"$ref": "AttributeScores"},
            },
            "languages": {"type": "array", "items": {"type": "string"}},
            "communityId": {"type": "string"},
            "clientToken": {"type": "string"},
            "sessionId": {"type": "string"},
        },
    },
    "SuggestCommentScoreResponse": {
        "id": "SuggestCommentScoreResponse",
        "type": "object",
        "properties": {
            "detectedLanguages": {"type": "array", "items": {"type": "string"}},
            "requestedLanguages": {"type": "array", "items": {"type": "string"}},
            "clientToken": {"type": "string"},
        },
    },
}


def _method(name: str, request: str, response: str) -> dict[str, Any]:
    return {
        "id": f"commentanalyzer.comments.{name}",
        "path": f"{API_VERSION}/comments:{name}",
        "flatPath": f"{API_VERSION}/comments:{name}",
        "httpMethod": "POST",
        "parameters": {},
        "parameterOrder": [],
        "request": {"$ref": request},
        "response": {"$ref": response},
    }


def document(root_url: str) -> dict[str, Any]:
    """The discovery document with ``rootUrl`` pointing at ``root_url`` (ends in /)."""
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"commentanalyzer:{API_VERSION}",
        "name": "commentanalyzer",
        "version": API_VERSION,
        "title": "Perspective Comment Analyzer API (commentmod)",
        "description": "Toxicity scores for comments, served by commentmod.",
        "protocol": "rest",
        "rootUrl": root_url,
        "servicePath": "",
        "baseUrl": root_url,
        "batchPath": "batch",
        "parameters": {
            "key": {"type": "string", "location": "query", "description": "site API key"},
            "alt": {
                "type": "string",
                "location": "query",
                "default": "json",
                "enum": ["json"],
            },
            "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
        },
        "resources": {
            "comments": {
                "methods": {
                    "analyze": _method(
                        "analyze", "AnalyzeCommentRequest", "AnalyzeCommentResponse"
                    ),
                    "suggestscore": _method(
                        "suggestscore", "SuggestCommentScoreRequest", "SuggestCommentScoreResponse"
                    ),
                }
            }
        },
        "schemas": SCHEMAS,
    }
