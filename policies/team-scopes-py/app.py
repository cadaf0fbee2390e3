"""The component's app module: what componentize-py builds (``componentize-py ... app``)."""

from team_scopes import TeamScopes
from tollgate_policy import export

#: The exports of the ``trust-policy`` world.
WitWorld = export(TeamScopes)
