"""FakeAws per region, behind one set of activities: a multi-region deployment on fakes.

Each call goes to the FakeAws of the region its input names (``region``, or ``target.region``);
the HTTP activities, whose inputs name a URL instead, go to the region whose colors have it.
"""

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from models.config import EnvironmentConfig
from tests.workflows.fake_aws import FakeAws


@dataclass
class RegionalFakeAws:
    """One FakeAws per region, and which region each color URL belongs to."""

    regions: dict[str, FakeAws]
    urls: dict[str, str] = field(default_factory=dict)
    """Color base URL → region."""

    @classmethod
    def of(cls, environment: EnvironmentConfig, **fakes: FakeAws) -> "RegionalFakeAws":
        """A FakeAws for each region of ``environment`` (``fakes`` by region, with ``_`` for -)."""
        regional = cls(regions={}, urls={})
        for region in environment.all_regions():
            target = environment.for_region(region)
            regional.regions[region] = fakes.get(region.replace("-", "_"), FakeAws())
            for color in (target.blue, target.green):
                if color.url:
                    regional.urls[color.url] = region
        return regional

    def activities(self) -> list[Any]:
        """Dispatchers with the fakes' names and types, to register on a worker."""
        return [self._dispatcher(fake.__name__) for fake in FakeAws().activities()]

    def _dispatcher(self, name: str) -> Any:
        async def dispatch(arg: Any) -> Any:
            return await getattr(self.regions[self.region_of(arg)], name)(arg)

        # The data converter needs the real input and result types.
        dispatch.__annotations__ = dict(getattr(FakeAws, name).__annotations__)
        dispatch.__name__ = name
        return activity.defn(name=name)(dispatch)

    def region_of(self, arg: Any) -> str:
        """The region an activity input is about."""
        if hasattr(arg, "region"):
            return str(arg.region)
        if hasattr(arg, "target"):
            return str(arg.target.region)
        url = str(getattr(arg, "color_url", None) or getattr(arg, "url", ""))
        for base, region in self.urls.items():
            if url.startswith(base):
                return region
        raise AssertionError(f"no region for {arg!r}")
