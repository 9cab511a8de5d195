#!/usr/bin/env python3
"""sagan studio in a real browser: Debian's chromium, headless, driven by Selenium through chromedriver.

    python3 Tests/Browser/studio_browser_test.py [--sagan .build/release/sagan] [--work DIR]
        [--screenshots DIR] [--runs DIR]

Trains a small run (unless --runs names a folder of runs to show), starts `sagan studio` on a free port,
and checks what a user does: the run list shows the run; its page draws curves with points; the sample
slider changes the picture; the playground generates an image; a click on a pixel shows G's attention
maps, and a click elsewhere shows different ones; D's maps show for that image and for an uploaded one;
the interpolation strip and the grid appear; a run that trains while the page is open gains points
without a reload. Saves screenshots of the run list, the run page and the attention explorer, and of
the curves and the playground alone. Exits 0 when every check passed; stops the server and the browser.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train(sagan, folder, steps, resume=False):
    """A tiny32 run on the default dataset: batch 16, samples and checkpoints every 10 steps."""
    command = [sagan, "train", "--steps", str(steps), "--batch", "16", "--sample-every", "10",
               "--checkpoint-every", "10", "--log-every", "2", "--run-dir", folder, "--threads", "1"]
    return subprocess.Popen(command + (["--resume", "auto"] if resume else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def start_studio(sagan, runs):
    """`sagan studio --port 0` and the address it prints."""
    process = subprocess.Popen([sagan, "studio", "--runs", runs, "--port", "0", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"sagan studio did not start: {line!r}")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1900", "--no-proxy-server", "--hide-scrollbars"):
        options.add_argument(argument)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


class Checks:
    """Named checks; a failure is reported and the run goes on, so one report lists them all."""

    def __init__(self):
        self.failures = []

    def expect(self, condition, what):
        print(("ok    " if condition else "FAIL  ") + what, flush=True)
        if not condition:
            self.failures.append(what)


def wait(driver, condition, what, timeout=30):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except Exception:
        print(f"timed out waiting for: {what}", flush=True)
        return None


def chart_points(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#charts svg')].map(s => +(s.dataset.points || 0))")


def maps(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#attention-maps canvas')]"
        ".map(c => ({layer: c.dataset.layer, query: c.dataset.query, pixels: c.toDataURL()}))")


def click_pixel(driver, x, y):
    """Clicks image pixel (x, y) of the generated image, whatever its size on screen."""
    image = driver.find_element(By.ID, "generated")
    side = driver.execute_script("return arguments[0].naturalWidth", image)
    size = image.size
    offset_x = (x + 0.5) * size["width"] / side - size["width"] / 2
    offset_y = (y + 0.5) * size["height"] / side - size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(image, offset_x, offset_y).click().perform()


def run_checks(driver, address, run, check, shots, upload, live=None):
    driver.get(address)
    rows = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr"), "the run list")
    names = [row.text for row in rows or []]
    check.expect(any(run in name for name in names), f"the run list shows {run} ({len(names)} rows)")
    driver.save_screenshot(os.path.join(shots, "studio-runs.png"))

    driver.find_element(By.LINK_TEXT, run).click()
    points = wait(driver, lambda d: [p for p in chart_points(d) if p > 0] or None, "curves with points")
    check.expect(bool(points) and len(points) >= 3, f"the run page draws curves with points: {chart_points(driver)}")
    lines = driver.find_elements(By.CSS_SELECTOR, "#charts polyline")
    check.expect(len(lines) >= 4, f"the charts have lines ({len(lines)} polylines)")

    # Drag across the first chart to zoom into its middle steps (every chart follows); double-click resets.
    chart = driver.find_element(By.CSS_SELECTOR, "#charts svg")
    full = chart.get_attribute("data-range")
    width = chart.size["width"]
    ActionChains(driver).move_to_element_with_offset(chart, -width * 0.2, 0).click_and_hold() \
        .move_by_offset(width * 0.3, 0).release().perform()
    zoomed = driver.find_element(By.CSS_SELECTOR, "#charts svg").get_attribute("data-range")
    (a, b), (c, d) = (map(float, full.split(",")), map(float, zoomed.split(",")))
    check.expect(a < c < d < b, f"dragging across a chart zooms into steps {zoomed} of {full}")
    ActionChains(driver).double_click(driver.find_element(By.CSS_SELECTOR, "#charts svg")).perform()
    reset = driver.find_element(By.CSS_SELECTOR, "#charts svg").get_attribute("data-range")
    check.expect(reset == full, f"a double-click shows all steps again ({reset})")

    slider = driver.find_element(By.ID, "sample-slider")
    wait(driver, lambda d: d.find_element(By.ID, "sample-image").get_attribute("src"), "a sample grid")
    if int(slider.get_attribute("max")) > 0:
        last_src = driver.find_element(By.ID, "sample-image").get_attribute("src")
        driver.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider)
        first_src = driver.find_element(By.ID, "sample-image").get_attribute("src")
        loaded = wait(driver, lambda d: d.execute_script(
            "const i = document.getElementById('sample-image'); return i.complete && i.naturalWidth > 0"), "the grid")
        check.expect(first_src != last_src and bool(loaded),
                     f"the sample slider changes the grid ({last_src[-22:]} -> {first_src[-22:]})")
    else:
        check.expect(live is None, "the run has two sample grids or more for the slider")  # a run of ours has two

    ready = wait(driver, lambda d: d.find_element(By.ID, "generated").get_attribute("data-ready") == "true",
                 "a generated image")
    side = driver.execute_script("return document.getElementById('generated').naturalWidth")
    check.expect(bool(ready) and side > 0, f"the playground generates an image ({side}x{side})")
    caption = driver.find_element(By.ID, "generated-caption").text
    print(f"      {caption}")

    driver.execute_script("document.getElementById('generated-stack').scrollIntoView()")
    click_pixel(driver, side // 4, side // 4)
    query_a = f"{side // 4},{side // 4}"
    first = wait(driver, lambda d: [m for m in maps(d) if m["query"] == query_a] or None, "maps for the first pixel")
    check.expect(bool(first), f"a click on pixel {query_a} shows attention maps ({len(first or [])} layers)")
    click_pixel(driver, 3 * side // 4, 3 * side // 4)
    query_b = f"{3 * side // 4},{3 * side // 4}"
    second = wait(driver, lambda d: [m for m in maps(d) if m["query"] == query_b] or None, "maps for the second pixel")
    check.expect(bool(first) and bool(second) and first[0]["pixels"] != second[0]["pixels"],
                 f"another pixel ({query_b}) shows a different map")
    driver.save_screenshot(os.path.join(shots, "studio-attention.png"))
    driver.find_element(By.CSS_SELECTOR, ".playground").screenshot(os.path.join(shots, "studio-playground.png"))

    # D's attention on the same image, then on an uploaded one (a sample grid of the run).
    Select(driver.find_element(By.ID, "attention-net")).select_by_value("D")
    judged = wait(driver, lambda d: [m for m in maps(d) if m["layer"].startswith("D.")] or None, "D's maps")
    check.expect(bool(judged), f"D's attention on the generated image ({len(judged or [])} layers)")
    Select(driver.find_element(By.ID, "attention-net")).select_by_value("upload")
    driver.find_element(By.ID, "upload").send_keys(upload)
    seen = wait(driver, lambda d: "as D sees it" in d.find_element(By.ID, "generated-caption").text or None, "upload")
    click_pixel(driver, 5, 7)
    uploaded = wait(driver, lambda d: [m for m in maps(d) if m["query"] == "5,7" and m["layer"].startswith("D.")]
                    or None, "maps on the upload")
    check.expect(bool(seen) and bool(uploaded), "an uploaded image shows D's attention for a clicked pixel")
    Select(driver.find_element(By.ID, "attention-net")).select_by_value("G")

    driver.find_element(By.ID, "interpolate").click()
    strip = wait(driver, lambda d: d.execute_script(
        "const i = document.getElementById('strip'); return !i.hidden && i.complete && i.naturalWidth > 0"), "strip")
    check.expect(bool(strip), "the interpolation strip appears")
    driver.find_element(By.ID, "make-grid").click()
    grid = wait(driver, lambda d: d.execute_script(
        "const i = document.getElementById('grid'); return !i.hidden && i.complete && i.naturalWidth > 0"), "grid")
    check.expect(bool(grid), "the grid of 16 appears")
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(os.path.join(shots, "studio-run.png"))
    driver.find_element(By.ID, "charts").screenshot(os.path.join(shots, "studio-curves.png"))

    if live:
        before = sum(chart_points(driver))
        trainer = live()
        grown = wait(driver, lambda d: sum(chart_points(d)) > before or None, "new points while training", 120)
        trainer.wait(timeout=300)
        check.expect(bool(grown), f"a run that trains gains points without a reload ({before} -> "
                                  f"{sum(chart_points(driver))})")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    check.expect(not errors, f"no errors in the browser console {[e['message'][:120] for e in errors]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sagan", default=os.path.join(ROOT, ".build", "release", "sagan"))
    parser.add_argument("--work", help="a folder for the run (default: a temporary one, removed)")
    parser.add_argument("--runs", help="show this folder of runs instead of training one")
    parser.add_argument("--run", help="with --runs: the run to open (default: the first)")
    parser.add_argument("--screenshots", default=os.path.join(ROOT, ".build", "browser-test"))
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    work = args.work or tempfile.mkdtemp(prefix="studio-browser-")
    check = Checks()
    live = None
    if args.runs:
        runs, run = args.runs, args.run
    else:
        runs, run = os.path.join(work, "runs"), "browser"
        folder = os.path.join(runs, run)
        trainer = train(args.sagan, folder, 20)
        _, errors = trainer.communicate()
        if trainer.returncode != 0:
            raise SystemExit(f"sagan train failed: {errors}")
        live = lambda: train(args.sagan, folder, 40, resume=True)  # noqa: E731
    studio, address = start_studio(args.sagan, runs)
    driver = None
    try:
        driver = browser()
        upload = os.path.join(runs, run, "samples", sorted(os.listdir(os.path.join(runs, run, "samples")))[-1])
        run_checks(driver, address, run, check, args.screenshots, upload, live)
    finally:
        if driver:
            driver.quit()
        studio.terminate()
        try:
            studio.wait(timeout=30)
        except subprocess.TimeoutExpired:
            studio.kill()
        if not args.work and not args.runs:
            shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {args.screenshots}")
    if check.failures:
        print(f"{len(check.failures)} checks failed", file=sys.stderr)
        return 1
    print("all browser checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
