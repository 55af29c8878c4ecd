"""Agency codes, the agency directory and the axis-node tree."""

from docexchange.directory.codes import AgencyCode, parse_code
from docexchange.directory.directory import Agency, AxisNode, Directory, GovLevel, Official, fold, load_directory

__all__ = [
    "Agency",
    "AgencyCode",
    "AxisNode",
    "Directory",
    "GovLevel",
    "Official",
    "fold",
    "load_directory",
    "parse_code",
]
