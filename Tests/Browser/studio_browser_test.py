#!/usr/bin/env python3
"""sagan studio in a real browser: Debian's chromium, headless, driven by Selenium through chromedriver.

    python3 Tests/Browser/studio_browser_test.py [--sagan .build/release/sagan] [--work DIR]
        [--screenshots DIR] [--runs DIR]

Trains a small run (unless --runs names a folder of runs to show), starts `sagan studio` on a free port,
and checks what a user does: the run list shows the run; its page draws curves with points; the sample
slider changes the picture; the playground generates an image; a click on a pixel shows G's attention
maps, and a click elsewhere shows different ones; D's maps show for that image and for an uploaded one;
the interpolation strip and the grid appear; a run that trains while the page is open gains points
without a reload, and its summary, checkpoint and header follow it to the end. Then, at 1440x900 and
390x844: no sideways scrolling, clean chart axes, tooltips inside their charts, upload mode left by a
new seed, errors beside the field or button at fault, strip proportions, the attention map beside or
over the image with one colour bar, arrow keys, a run that does not exist, and (at 390) a live run
again; an empty run, overlaid runs, raw lines, log scale, KID ± std and the CSV; a studio started
where no ./runs exists; and no console error in any flow. Saves screenshots of the run list, the run
page and the attention explorer, of the curves and the playground alone, and of the playground and
run list at both sizes. Exits 0 when every check passed; stops the servers and the browser.
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
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train(sagan, folder, steps, resume=False):
    """A tiny32 run on the default dataset: batch 16, samples and checkpoints every 10 steps."""
    command = [sagan, "train", "--steps", str(steps), "--batch", "16", "--sample-every", "10",
               "--checkpoint-every", "10", "--log-every", "2", "--run-dir", folder, "--threads", "1"]
    return subprocess.Popen(command + (["--resume", "auto"] if resume else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def start_studio(sagan, runs, cwd=None):
    """`sagan studio --port 0` (over ./runs when `runs` is None) and the address it prints."""
    folder = ["--runs", runs] if runs else []
    process = subprocess.Popen([sagan, "studio", *folder, "--port", "0", "--threads", "1"], cwd=cwd,
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
                     "--window-size=1400,1900", "--no-proxy-server"):
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
        "return [...document.querySelectorAll('#charts .chart > svg')].map(s => +(s.dataset.points || 0))")


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


def no_horizontal_scroll(driver):
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


def chart_axes_are_clean(driver):
    """Every chart's y labels are distinct, none is an exponent-sized zero, no x label is cut, and the
    legend's swatches are swatch-sized."""
    return driver.execute_script("""
        const problems = [];
        for (const swatch of document.querySelectorAll('#charts .legend svg')) {
          const r = swatch.getBoundingClientRect();
          if (r.height > 16 || r.width > 40) problems.push('a legend swatch of ' + r.width + 'x' + r.height);
        }
        for (const svg of document.querySelectorAll('#charts .chart > svg')) {
          const box = svg.getBoundingClientRect();
          const ys = [...svg.querySelectorAll('.axis text:not(.tick-x):not(.title)')].map(t => t.textContent);
          if (new Set(ys).size !== ys.length) problems.push('duplicate y labels ' + ys.join(' '));
          if (ys.some(t => /e-\\d/.test(t))) problems.push('a zero in exponent form ' + ys.join(' '));
          for (const text of svg.querySelectorAll('.axis text.tick-x')) {
            const r = text.getBoundingClientRect();
            if (r.left < box.left - 1 || r.right > box.right + 1) problems.push('cut x label ' + text.textContent);
          }
        }
        return problems;""")


def error_beside(driver, error_id, control_id):
    """The error is shown, and on screen near the control that caused it (not in a corner of the page)."""
    return driver.execute_script("""
        const [e, c] = [document.getElementById(arguments[0]), document.getElementById(arguments[1])];
        if (e.hidden || !e.textContent) return false;
        const [a, b] = [e.getBoundingClientRect(), c.getBoundingClientRect()];
        return Math.abs(a.top - b.top) < 120 && a.bottom > 0 && a.top < window.innerHeight;""", error_id, control_id)


def state_checks(driver, address, run, check, shots, upload, wide):
    """The numbered items of the studio's polish: upload mode, seed errors, errors by their buttons,
    a missing run, chart axes, strip proportions, tooltips and narrow screens."""
    size = "1440x900" if wide else "390x844"
    driver.get(address + f"#/run/{run}")
    wait(driver, lambda d: d.find_element(By.ID, "generated").get_attribute("data-ready") == "true", "an image")
    check.expect(no_horizontal_scroll(driver), f"{size}: the run page does not scroll sideways")
    problems = chart_axes_are_clean(driver)
    check.expect(not problems, f"{size}: chart axes read cleanly {problems[:3]}")

    # A tooltip near a chart's right edge stays inside the chart and the page.
    chart = driver.find_element(By.CSS_SELECTOR, "#charts .chart > svg")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    ActionChains(driver).move_to_element_with_offset(chart, chart.size["width"] / 2 - 3, 0).perform()
    inside = driver.execute_script("""
        const tip = document.querySelector('#charts .chart .tip');
        const box = tip.parentElement.getBoundingClientRect();
        const r = tip.getBoundingClientRect();
        return !tip.hidden && r.right <= box.right + 1 && r.left >= box.left - 1""")
    check.expect(bool(inside) and no_horizontal_scroll(driver), f"{size}: the tooltip at a chart's right edge "
                                                               "stays inside it")

    # Upload mode is a state: a new seed leaves it, and the maps follow the new image.
    Select(driver.find_element(By.ID, "attention-net")).select_by_value("upload")
    driver.find_element(By.ID, "upload").send_keys(upload)
    wait(driver, lambda d: "as D sees it" in d.find_element(By.ID, "generated-caption").text or None, "upload")
    seed = driver.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("3\n")
    drawn = wait(driver, lambda d: d.find_element(By.ID, "generated-caption").text.startswith("seed 3") or None,
                 "seed 3")
    mode = driver.find_element(By.ID, "attention-net").get_attribute("value")
    check.expect(bool(drawn) and mode == "D", f"{size}: a new seed leaves upload mode (attention of {mode})")
    Select(driver.find_element(By.ID, "attention-net")).select_by_value("G")

    # An empty seed is an error beside the field; the image and maps stay those of seed 3.
    seed.clear()
    driver.find_element(By.ID, "seed-b").click()
    check.expect(error_beside(driver, "seed-error", "seed")
                 and driver.find_element(By.ID, "generated-caption").text.startswith("seed 3"),
                 f"{size}: an empty seed says so beside the field and keeps seed 3's image")
    seed.send_keys("3\t")  # committed: the error beside the field goes, and the image is seed 3's again
    wait(driver, lambda d: not d.find_element(By.ID, "seed-error").is_displayed(), "the seed error to go")

    # Keyboard: the seed field steps by one with the arrow keys; the image's arrow keys move the query point.
    seed.send_keys(Keys.ARROW_UP)
    stepped = wait(driver, lambda d: d.find_element(By.ID, "generated-caption").text.startswith("seed 4") or None,
                   "seed 4")
    stack = driver.find_element(By.ID, "generated-stack")
    driver.execute_script("arguments[0].focus()", stack)
    before = driver.execute_script("return document.querySelector('#attention-maps canvas')?.dataset.query")
    stack.send_keys(Keys.ARROW_RIGHT)
    moved = wait(driver, lambda d: d.execute_script(
        "return document.querySelector('#attention-maps canvas')?.dataset.query") != before or None, "a moved point")
    after = driver.execute_script("return document.querySelector('#attention-maps canvas')?.dataset.query")
    check.expect(bool(stepped) and bool(moved), f"{size}: arrow keys step the seed (to 4) and move the query point "
                                                f"({before} -> {after})")
    seed.send_keys(Keys.ARROW_DOWN)
    wait(driver, lambda d: d.find_element(By.ID, "generated-caption").text.startswith("seed 3") or None, "seed 3")

    # A server error lands beside its button, and the old strip goes.
    driver.find_element(By.ID, "interpolate").click()
    if not wait(driver, lambda d: d.execute_script("return !document.getElementById('strip').hidden"), "a strip"):
        print("      " + driver.execute_script("return [...document.querySelectorAll('.error')]"
                                              ".filter(e => !e.hidden).map(e => e.id + ': ' + e.textContent)"
                                              ".join('; ') + ' / ' + document.getElementById('interpolate')"
                                              ".textContent"))
    count = driver.find_element(By.ID, "strip-count")
    count.clear()
    count.send_keys("40")
    driver.find_element(By.ID, "interpolate").click()
    wait(driver, lambda d: d.execute_script("return !document.getElementById('strip-error').hidden"), "strip error")
    check.expect(error_beside(driver, "strip-error", "interpolate")
                 and driver.execute_script("return document.getElementById('strip').hidden"),
                 f"{size}: 40 images is an error beside Interpolate, and the old strip is gone")

    # A 16-image strip keeps its proportions.
    count.clear()
    count.send_keys("16")
    driver.find_element(By.ID, "interpolate").click()
    ratio = wait(driver, lambda d: d.execute_script("""
        const i = document.getElementById('strip');
        if (i.hidden || !i.complete || !i.naturalWidth) return null;
        return [i.clientWidth / i.clientHeight, i.naturalWidth / i.naturalHeight];"""), "a 16-image strip")
    check.expect(bool(ratio) and abs(ratio[0] / ratio[1] - 1) < 0.03,
                 f"{size}: the 16-image strip keeps its proportions {ratio}")
    check.expect(no_horizontal_scroll(driver), f"{size}: the playground does not scroll sideways")

    # Narrow screens overlay the map on the image, aligned with it; wide ones show it beside.
    overlay = driver.execute_script("""
        const [o, i] = [document.getElementById('attention-overlay'), document.getElementById('generated')];
        const [a, b] = [o.getBoundingClientRect(), i.getBoundingClientRect()];
        const shown = getComputedStyle(o).display !== 'none';
        return {shown, aligned: !shown || (Math.abs(a.left - b.left) < 1
                && Math.abs(a.width - b.width) < 1 && Math.abs(a.top - b.top) < 1),
                maps: getComputedStyle(document.getElementById('attention-maps')).display !== 'none'}""")
    expected = {"shown": not wide, "aligned": True, "maps": wide}
    check.expect(overlay == expected, f"{size}: the attention map is {'beside' if wide else 'over'} the image "
                                      f"({overlay})")
    driver.execute_script("document.getElementById('generated-stack').scrollIntoView()")
    driver.save_screenshot(os.path.join(shots, f"studio-playground-{size.split('x')[0]}.png"))
    top = driver.find_element(By.ID, "colour-scale").get_attribute("data-top")
    check.expect(top is not None and float(top) >= 2, f"{size}: the maps share a colour bar up to {top}× uniform")

    # A run that does not exist says so and shows nothing of the previous run.
    driver.get(address + "#/run/nope")
    gone = wait(driver, lambda d: d.find_element(By.ID, "run-error").is_displayed() or None, "not found")
    leftovers = driver.execute_script("""
        return document.querySelectorAll('#charts .chart > svg').length
          + (document.getElementById('run-content').hidden ? 0 : 1)""")
    check.expect(bool(gone) and leftovers == 0, f"{size}: #/run/nope says so and shows nothing of the last run")
    driver.get(address)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr"), "the run list")
    check.expect(no_horizontal_scroll(driver), f"{size}: the run list does not scroll sideways")


def curves_and_empty_checks(driver, address, runs, run, check):
    """An empty run's page says what will appear and how; overlaid runs have colours of their own and
    legends that show each line's dash; raw lines under smoothed ones; log scale; KID ± std; CSV."""
    os.makedirs(os.path.join(runs, "fresh"), exist_ok=True)
    open(os.path.join(runs, "fresh", "metrics.jsonl"), "w").close()
    driver.get(address + "#/run/fresh")
    empty = wait(driver, lambda d: all(d.find_element(By.ID, name).is_displayed()
                                       for name in ("no-curves", "no-samples", "no-checkpoints")) or None, "empty")
    broken = driver.execute_script("""
        return [...document.querySelectorAll('#run-view img, #run-view a[download]')]
          .filter(e => e.offsetParent !== null).map(e => e.id)""")
    check.expect(bool(empty) and not broken, f"a run without curves, samples or checkpoints says what will appear "
                                             f"(nothing broken shown: {broken})")

    other = os.path.join(runs, "copy")
    os.makedirs(other, exist_ok=True)
    shutil.copy(os.path.join(runs, run, "metrics.jsonl"), os.path.join(other, "metrics.jsonl"))
    with open(os.path.join(other, "metrics.jsonl"), "a") as log:
        log.write('{"kind":"eval","step":20,"kid":0.5,"kid_std":0.05}\n')
    driver.get(address + f"#/run/{run}?overlay=copy")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts .chart")) >= 4, "overlaid charts")
    colours = driver.execute_script("""
        const chart = document.querySelector('#charts .chart');
        const lines = [...chart.querySelectorAll('polyline.smoothed')];
        const swatches = [...chart.querySelectorAll('.legend svg line')];
        return {runs: lines.map(l => l.dataset.name.split(':')[0] + '|' + l.getAttribute('stroke')),
                dashes: lines.map(l => l.getAttribute('stroke-dasharray') || ''),
                swatchDashes: swatches.map(s => s.getAttribute('stroke-dasharray') || ''),
                raw: chart.querySelectorAll('polyline.raw').length}""")
    by_run = {}
    for entry in colours["runs"]:
        name, colour = entry.split("|")
        by_run.setdefault(name, set()).add(colour)
    own = len(by_run) == 2 and all(len(c) == 1 for c in by_run.values()) and len(set.union(*by_run.values())) == 2
    check.expect(own and colours["dashes"] == colours["swatchDashes"] and len(set(colours["dashes"])) > 1,
                 f"overlaid runs have a colour each and the legend shows each line's dash {colours}")
    check.expect(colours["raw"] > 0, f"the raw curve lies faint under the smoothed one ({colours['raw']} raw lines)")
    kid = driver.execute_script("""
        const chart = [...document.querySelectorAll('#charts .chart')].find(c => c.querySelector('h3').textContent
          .startsWith('KID'));
        if (!chart) return null;
        const svg = chart.querySelector('svg');
        const width = svg.viewBox.baseVal.width;
        const circle = chart.querySelector('circle');
        return {bars: chart.querySelectorAll('.error-bar').length,
                x: circle ? +circle.getAttribute('cx') / width : -1}""")
    evaluated = any('"kind":"eval"' in line for line in open(os.path.join(runs, run, "metrics.jsonl")))
    if evaluated:  # a run of --runs with evaluations of its own: KID is not a single point there
        check.expect(bool(kid) and kid["bars"] >= 1, f"KID is drawn with its ± std ({kid})")
    else:
        check.expect(bool(kid) and kid["bars"] == 1 and 0.4 < kid["x"] < 0.6,
                     f"a single KID evaluation is centred, with its ± std ({kid})")
    driver.find_element(By.ID, "log-scale").click()
    logged = driver.execute_script("""
        return [...document.querySelectorAll('#charts .chart')].filter(c => [...c.querySelectorAll('.axis .title')]
          .some(t => t.textContent === 'log')).map(c => c.querySelector('h3').textContent)""")
    check.expect("Seconds per step" in logged and "Loss" not in logged and "D outputs" not in logged,
                 f"log scale applies to the charts whose values are all positive ({logged})")
    driver.find_element(By.ID, "log-scale").click()
    driver.find_element(By.ID, "download-metrics").click()
    href = driver.find_element(By.ID, "download-metrics").get_attribute("href") or ""
    csv = driver.execute_script("return metricsCSV(page.metrics)")
    check.expect(href.startswith("blob:") and csv.startswith("step,") and csv.count("\n") >= 10,
                 f"Download CSV gives the logged rows ({href[:12]}, {csv[:40]!r}…)")
    driver.find_element(By.CSS_SELECTOR, "nav.sections button[data-section='playground-heading']").click()
    shown = wait(driver, lambda d: d.execute_script("""
        const r = document.getElementById('playground-heading').getBoundingClientRect();
        return window.scrollY > 0 && r.top >= 0 && r.bottom <= window.innerHeight"""), "the playground section")
    check.expect(bool(shown), "the Playground tab scrolls to the playground")
    note = driver.find_element(By.ID, "ema-label").get_attribute("title")
    check.expect("--ema" in (note or ""), f"a greyed-out G-EMA says why ({note!r})")
    shutil.rmtree(os.path.join(runs, "fresh"))
    shutil.rmtree(other)


def live_checks(driver, check, live, steps, size):
    """A run that trains while its page is open: curves gain points, the summary and the playground
    follow it to its last step and checkpoint, and the header says when the training ended."""
    before = sum(chart_points(driver))
    trainer = live(steps)
    grown = wait(driver, lambda d: sum(chart_points(d)) > before or None, "new points while training", 120)
    trainer.wait(timeout=300)
    check.expect(bool(grown), f"{size}: a run that trains gains points without a reload ({before} -> "
                              f"{sum(chart_points(driver))})")
    followed = wait(driver, lambda d: f"step {steps} of {steps}" in d.find_element(By.ID, "run-summary").text
                    and d.find_element(By.ID, "checkpoint").get_attribute("value") == f"step-{steps:06d}.safetensors"
                    or None, "the summary and the playground follow the run", 60)
    check.expect(bool(followed), f"{size}: the summary and the playground follow a live run to its last step "
                                 f"({driver.find_element(By.ID, 'run-summary').text}, "
                                 f"{driver.find_element(By.ID, 'checkpoint').get_attribute('value')})")
    ended = wait(driver, lambda d: "finished" in d.find_element(By.ID, "status").text or None, "finished", 30)
    check.expect(bool(ended), f"{size}: the header says the training ended "
                              f"({driver.find_element(By.ID, 'status').text})")


def run_checks(driver, address, run, check, shots, upload, live=None, query=None):
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
    chart = driver.find_element(By.CSS_SELECTOR, "#charts .chart > svg")
    full = chart.get_attribute("data-range")
    width = chart.size["width"]
    ActionChains(driver).move_to_element_with_offset(chart, -width * 0.2, 0).click_and_hold() \
        .move_by_offset(width * 0.3, 0).release().perform()
    zoomed = driver.find_element(By.CSS_SELECTOR, "#charts .chart > svg").get_attribute("data-range")
    (a, b), (c, d) = (map(float, full.split(",")), map(float, zoomed.split(",")))
    check.expect(a < c < d < b, f"dragging across a chart zooms into steps {zoomed} of {full}")
    ActionChains(driver).double_click(driver.find_element(By.CSS_SELECTOR, "#charts .chart > svg")).perform()
    reset = driver.find_element(By.CSS_SELECTOR, "#charts .chart > svg").get_attribute("data-range")
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
    if query:
        # The point the docs' screenshots show (a face's eye): pinned last.
        click_pixel(driver, *query)
        wait(driver, lambda d: [m for m in maps(d) if m["query"] == f"{query[0]},{query[1]}"] or None, "the query")
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
        live_checks(driver, check, live, 40, "1400x1900")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    check.expect(not errors, f"no errors in the browser console {[e['message'][:120] for e in errors]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sagan", default=os.path.join(ROOT, ".build", "release", "sagan"))
    parser.add_argument("--work", help="a folder for the run (default: a temporary one, removed)")
    parser.add_argument("--runs", help="show this folder of runs instead of training one")
    parser.add_argument("--run", help="with --runs: the run to open (default: the first)")
    parser.add_argument("--screenshots", default=os.path.join(ROOT, ".build", "browser-test"))
    parser.add_argument("--query", help="X,Y: a pixel to pin last in the attention explorer (for screenshots)")
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
        live = lambda steps: train(args.sagan, folder, steps, resume=True)  # noqa: E731
    studio, address = start_studio(args.sagan, runs)
    driver = None
    try:
        driver = browser()
        upload = os.path.join(runs, run, "samples", sorted(os.listdir(os.path.join(runs, run, "samples")))[-1])
        query = tuple(int(value) for value in args.query.split(",")) if args.query else None
        run_checks(driver, address, run, check, args.screenshots, upload, live, query)
        curves_and_empty_checks(driver, address, runs, run, check)
        for wide, (width, height) in ((True, (1440, 900)), (False, (390, 844))):
            driver.set_window_size(width, height)
            state_checks(driver, address, run, check, args.screenshots, upload, wide)
            if live and not wide:
                driver.get(address + f"#/run/{run}")
                wait(driver, lambda d: [p for p in chart_points(d) if p > 0] or None, "curves")
                live_checks(driver, check, live, 60, "390x844")
            driver.save_screenshot(os.path.join(args.screenshots, f"studio-runs-{width}.png"))
        # `sagan studio` where no ./runs exists yet: the empty page, saying how to start a run.
        empty_folder = tempfile.mkdtemp(prefix="studio-empty-")
        bare, bare_address = start_studio(os.path.abspath(args.sagan), None, cwd=empty_folder)
        try:
            driver.get(bare_address)
            told = wait(driver, lambda d: d.find_element(By.ID, "no-runs").is_displayed() or None, "no runs")
            text = driver.find_element(By.ID, "no-runs").text if told else ""
            check.expect("sagan train" in text, f"sagan studio without ./runs shows how to start a run ({text[:60]!r})")
        finally:
            bare.terminate()
            bare.wait(timeout=30)
            shutil.rmtree(empty_folder, ignore_errors=True)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        check.expect(not errors, f"no errors in the browser console in any flow {[e['message'][:120] for e in errors]}")
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
