"""Options of the ``cbis-ddsm`` adapter (see :mod:`bench.data.cbis_ddsm`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from bench.data.base import DatasetOptions

NAME = "cbis-ddsm"


class CBISDDSMOptions(DatasetOptions):
    """Options of the ``cbis-ddsm`` dataset (``data.cbis-ddsm`` in a suite; ``bench data check --policy/-o``)."""

    abnormality: Literal["mass", "calc", "both"] = Field(
        "both", description="which CSV pair(s) to read; 'both' deduplicates views listed under both prefixes")
    mode: Literal["image", "roi"] = Field(
        "image", description="'image' = one item per view (label: any abnormality malignant); 'roi' = one item per "
                             "abnormality, its CBIS-DDSM cropped image (Falconi-style ROI classification)")
    split: Literal["all", "train", "test"] = Field(
        "all", description="'all' reads both official splits; 'train'/'test' only that split's CSVs")
    policy: Literal["bwc-benign", "bwc-exclude"] = Field(
        "bwc-benign", description="BENIGN_WITHOUT_CALLBACK: 'bwc-benign' = label 0; 'bwc-exclude' = ignored, and "
                                  "views/abnormalities left without any other abnormality are excluded")
    leak_policy: Literal["drop_from_train", "keep"] = Field(
        "drop_from_train", description="split='train': drop patients who also appear in the official test CSVs of "
                                       "the selected types (cross-type leak), or keep them (with a warning)")
    masks: bool = Field(True, description="image mode: look up the ROI masks; False skips them (no mask problems)")
    csv_dir: str | None = Field(None, description="folder of the four CSVs, relative to the root or absolute "
                                                  "(default: the root and two levels of sub-folders are searched)")
    images_dir: str | None = Field(None, description="folder holding the case folders, relative to the root or "
                                                     "absolute (default: searched like csv_dir)")
    resize: Literal["pad", "stretch"] = Field("pad", description="resize to the square image size keeping the "
                                                                 "aspect ratio (zero padding) or stretching")
    roi_pipeline: Literal["crop", "falconi"] = Field(
        "crop", description="roi mode: 'crop' = the CBIS-DDSM cropped image; 'falconi' = Falconi et al.'s pipeline "
                            "from the full image and the ROI mask (CLAHE, mask bounding box, 8-px margin, NLM "
                            "denoising; ROIs with aspect ratio outside [0.4, 1.5] excluded)")
