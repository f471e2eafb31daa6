"""Where the registry workbooks are read from and where steward reports are written."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from vital_pipelines import config


class RegistrySource(dg.ConfigurableResource):
    """The folder of registry workbooks, and the folder for annotated copies sent back to stewards."""

    raw_dir: str = Field(default=str(config.RAW_DIR), description="Folder holding the registry workbooks.")
    reports_dir: str = Field(default_factory=lambda: str(config.reports_dir()),
                             description="Folder for annotated copies of workbooks that failed their contracts.")
    isolated_reader: bool = Field(default=True, description="Read workbooks in a memory-limited child process.")
    portal_url: str | None = Field(default_factory=lambda: os.environ.get("VITAL_PORTAL_URL") or None,
                                   description="The steward portal's address (`vital-pipelines serve`), for links "
                                               "to full reports and annotated workbooks in check metadata.")

    def workbook(self, name: str) -> Path:
        return Path(self.raw_dir) / name


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"registry_source": RegistrySource()})
