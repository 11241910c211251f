"""Headless Chromium driven by Selenium, for the web app's end-to-end tests and its benchmark.

Debian's `chromium` and `chromium-driver` (browsers cannot be downloaded here: Selenium Manager
is never asked). Each browser gets a fresh profile in a temporary directory, no background
networking, no first-run pages, and a download directory of its own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                  "--force-color-profile=srgb", "--lang=en-US"]


def _find(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(f"{' or '.join(names)} is not installed: apt-get install -y chromium chromium-driver")


@contextmanager
def chromium(download_dir: Path | None = None, width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile; quit (and the profile removed) afterwards."""
    profile = tempfile.mkdtemp(prefix="ms8-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM_BIN") or _find("chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    if download_dir is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(download_dir), "download.prompt_for_download": False,
            "download.directory_upgrade": True, "safebrowsing.enabled": False,
        })
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN") or _find("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        if download_dir is not None:  # headless Chromium saves downloads only when told where
            driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": str(download_dir)})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def full_page_screenshot(driver: webdriver.Chrome, path: Path, width: int | None = None) -> None:
    """The whole page (not only the viewport) as a PNG, at `width` CSS pixels if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    w = width or int(metrics["cssLayoutViewport"]["clientWidth"])
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": w, "height": int(size["height"]), "deviceScaleFactor": 1, "mobile": False})
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    import base64

    path.write_bytes(base64.b64decode(shot["data"]))
