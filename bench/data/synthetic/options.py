"""Options of the synthetic datasets: each dataset's knobs and defaults (see :mod:`bench.data.synthetic`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model, model_validator
from pydantic.fields import FieldInfo

from bench.data.base import DatasetOptions


class SynthOptions(DatasetOptions):
    """Options every synthetic dataset shares."""

    n_images: int = Field(240, ge=2, description="number of images")
    seed: int = Field(0, ge=0, description="generator seed; the same seed gives the same data")
    malignant_fraction: float = Field(0.35, ge=0.0, le=1.0, description="share of malignant images (label 1)")
    blur: float = Field(0.0, ge=0.0, le=0.1, description="Gaussian blur sigma as a fraction of the image size")
    noise: float = Field(0.02, ge=0.0, le=0.5, description="white noise std on the [0, 1] intensity scale")


class MammoOptions(SynthOptions):
    """Knobs of the mammogram-like generator; each dataset below only changes defaults."""

    pairing: Literal["views", "bilateral"] = Field(
        "views", description="what a patient's two images are: 'views' = CC and MLO of one breast (both show "
                             "the lesion); 'bilateral' = left and right MLO (only one shows it)")
    benign_fraction: float = Field(0.6, ge=0.0, le=1.0,
                                   description="share of non-malignant images showing a benign mass (rest normal)")
    lesion_contrast: float = Field(0.45, ge=0.0, le=1.0, description="malignant mass brightness above the tissue")
    benign_contrast: float = Field(0.8, ge=0.0, le=2.0,
                                   description="benign mass brightness relative to a malignant one (BI-RADS: "
                                               "high-density masses are the more suspicious)")
    spicule_contrast: float = Field(0.8, ge=0.0, le=2.0, description="spicule brightness relative to the mass")
    calc_contrast: float = Field(0.7, ge=0.0, le=1.0, description="micro-calcification peak brightness")
    texture: float = Field(1.0, ge=0.0, le=3.0, description="scale of the fibroglandular texture amplitude")
    grain: float = Field(0.015, ge=0.0, le=0.5, description="std of film grain (noise correlated over ~1 px)")
    gamma: float = Field(1.0, gt=0.0, le=5.0, description="intensity profile: out = offset + gain * in ** gamma")
    gain: float = Field(1.0, gt=0.0, le=3.0, description="intensity profile gain")
    offset: float = Field(0.0, ge=-0.5, le=0.5, description="intensity profile offset")
    background: float = Field(0.04, ge=0.0, le=0.5, description="intensity outside the breast, before the profile")

    @model_validator(mode="after")
    def _check_bilateral(self):
        if self.pairing == "bilateral" and self.malignant_fraction > 0.5:
            raise ValueError(f"malignant_fraction={self.malignant_fraction} is impossible with pairing='bilateral' "
                             "(at most one image of a pair shows a lesion); use <= 0.5 or pairing='views'")
        return self


def _with_defaults(name: str, base: type[SynthOptions], doc: str, **defaults) -> type[SynthOptions]:
    """A subclass of ``base`` that only changes defaults, keeping each field's constraints and description."""
    fields = {k: (base.model_fields[k].annotation, FieldInfo.merge_field_infos(base.model_fields[k], default=v))
              for k, v in defaults.items()}
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__, **fields)


SynthDDSMOptions = _with_defaults(
    "SynthDDSMOptions", MammoOptions, "``synth-ddsm``: film-mammogram-like source (large, sharp, mild grain).",
    n_images=1200, malignant_fraction=0.4, blur=0.004)
SynthINbreastOptions = _with_defaults(
    "SynthINbreastOptions", MammoOptions,
    "``synth-inbreast``: full-field-digital-like target (black background, brighter tissue, clean, slight blur).",
    malignant_fraction=0.35, blur=0.011, noise=0.012, grain=0.0, gamma=0.75, gain=1.05, offset=-0.02,
    background=0.0)
SynthMIASOptions = _with_defaults(
    "SynthMIASOptions", MammoOptions,
    "``synth-mias``: scanned-film-like target (grey film base, low contrast, grain, stronger blur; film pairs).",
    pairing="bilateral", malignant_fraction=0.3, benign_fraction=0.35, blur=0.013, noise=0.03, grain=0.035,
    gamma=1.3, gain=0.85, offset=0.08, background=0.03)


class UltrasoundOptions(SynthOptions):
    """Knobs of the ultrasound-like generator."""

    normal_fraction: float = Field(0.2, ge=0.0, le=1.0,
                                   description="share of non-malignant images without a lesion (rest benign)")
    lesion_echo: float = Field(0.25, ge=0.0, le=1.0, description="lesion echogenicity relative to the tissue")
    posterior: float = Field(0.5, ge=0.0, le=1.0,
                             description="strength of posterior enhancement (benign) / shadowing (malignant)")
    halo: float = Field(0.6, ge=0.0, le=2.0, description="echogenic halo around malignant lesions (relative gain)")
    speckle_size: float = Field(0.015, gt=0.0, le=0.1, description="lateral speckle grain, fraction of image size")


SynthUltrasoundOptions = _with_defaults(
    "SynthUltrasoundOptions", UltrasoundOptions,
    "``synth-ultrasound``: B-mode-like target of another modality (the negative control).",
    malignant_fraction=0.35, blur=0.004, noise=0.015)
