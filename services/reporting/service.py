"""nameko entrypoints of the reporting service: archive and project every event; answer totals."""
from marshmallow import RAISE, Schema

from services.common.entrypoints import ServiceBase, handles, operation
from services.common.fields import Text
from services.common.topology import SUBSCRIPTIONS, handler_method

from . import projections, queries


class ProgrammeFilter(Schema):
    class Meta:
        unknown = RAISE
    programme_id = Text(60, load_default=None)


class ReportingService(ServiceBase):
    name = "reporting"

    @operation(ProgrammeFilter)
    def totals(self, data):
        return queries.totals(self.db, data["programme_id"])

    @operation()
    def rebuild_projections(self, _data):
        return {"events_replayed": projections.rebuild(self.db)}


def _archiving_handler(event_type: str):
    def handler(self, event, uow):
        projections.archive(uow, event)
        projections.project(uow, event)
    handler.__name__ = handler_method(event_type)
    return handles(event_type)(handler)


for _event_types in SUBSCRIPTIONS["reporting"].values():
    for _event_type in _event_types:
        setattr(ReportingService, handler_method(_event_type), _archiving_handler(_event_type))
