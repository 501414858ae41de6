"""Temporal search attributes: case references and codes only, never personal data."""

from typing import Any, Final

from temporalio.common import SearchAttributeKey

DEFINITION_ATTRIBUTE: Final = SearchAttributeKey.for_keyword("CaseclockDefinition")
TEAM_ATTRIBUTE: Final = SearchAttributeKey.for_keyword("CaseclockTeam")
STAGES_ATTRIBUTE: Final = SearchAttributeKey.for_keyword_list("CaseclockStages")
SEARCH_ATTRIBUTES: Final[tuple[SearchAttributeKey[Any], ...]] = (
    DEFINITION_ATTRIBUTE,
    TEAM_ATTRIBUTE,
    STAGES_ATTRIBUTE,
)
