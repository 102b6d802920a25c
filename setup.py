from pathlib import Path

from setuptools import find_packages, setup

requirements = [
    line.strip()
    for line in Path(__file__).with_name("requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="predictive-analytics-engine",
    version="0.1.0",
    description="Nightly forecasts, churn scores and growth projections for a SaaS usage platform",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["core", "core.*", "pipelines", "pipelines.*", "models", "models.*", "services", "services.*"]),
    install_requires=requirements,
    entry_points={"console_scripts": ["pae = pipelines.cli:main"]},
)
