// sagan studio: the list of runs.
"use strict";

// ---- The list of runs ---------------------------------------------------------------------------

let runsTimer = null;

async function showRuns() {
  page.details = null;
  $("runs-view").hidden = false;
  $("run-view").hidden = true;
  $("where").textContent = "";
  const refresh = async () => {
    try {
      renderRuns(await api("/api/runs"));
      status(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      status(error.message);
    }
  };
  await refresh();
  runsTimer = setInterval(refresh, 5000);
}

function renderRuns(runs) {
  const body = $("runs-table").querySelector("tbody");
  const ticked = new Set([...body.querySelectorAll("input:checked")].map((box) => box.value));
  body.innerHTML = "";
  $("no-runs").hidden = runs.length > 0;
  for (const run of runs) {
    const row = document.createElement("tr");
    const cells = [
      null, null, run.preset ?? "", run.resolution ? `${run.resolution}×${run.resolution}×${run.imageChannels}` : "",
      `${format(run.step ?? 0)} / ${format(run.steps ?? 0)}`, format(run.imagesSeen), format(run.lossD),
      format(run.lossG), format(run.realLogit), format(run.fakeLogit), format(run.kid), format(run.fid),
      ago(run.secondsSinceUpdate),
    ];
    cells.forEach((text, index) => {
      const cell = document.createElement("td");
      if (index === 0) {
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = run.id;
        box.checked = ticked.has(run.id);
        box.addEventListener("change", updateCompareButton);
        cell.appendChild(box);
      } else if (index === 1) {
        const link = document.createElement("a");
        link.href = `#/run/${encodeURIComponent(run.id)}`;
        link.textContent = run.name;
        cell.appendChild(link);
      } else {
        cell.textContent = text;
      }
      if (index === 12 && run.secondsSinceUpdate < 120) cell.className = "live";
      row.appendChild(cell);
    });
    body.appendChild(row);
  }
  updateCompareButton();
}

function updateCompareButton() {
  const ticked = [...document.querySelectorAll("#runs-table input:checked")].map((box) => box.value);
  $("compare").disabled = ticked.length < 1;
  $("compare").onclick = () => {
    location.hash = `#/run/${encodeURIComponent(ticked[0])}?overlay=${ticked.slice(1).map(encodeURIComponent)
      .join(",")}`;
  };
}
