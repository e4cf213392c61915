/// The dashboard page: one HTML document with its CSS and script inline, no CDN, fonts or
/// external files, so it works on an air-gapped cluster. Charts are hand-drawn SVG in the report's
/// style. It reads the JSON API and follows `/api/events` (Server-Sent Events) to update in place.
/// `#timeline` keeps one entry per update received, so a test (or a curious user) can see the page
/// changed without a reload; `#resources` lists every origin the page fetched from.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ranksweep dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0}
main{display:grid;grid-template-columns:minmax(520px,1.3fr) minmax(420px,1fr);gap:12px;padding:12px}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px 10px;min-width:0}
section h2{font-size:13px;margin:0 0 6px;color:#1f3b57}
.bar{height:10px;background:#e3e7eb;border-radius:5px;overflow:hidden;display:flex;width:240px}
.bar span{display:block;height:100%}
.done{background:#2e7d32}.running{background:#1565c0}.failed{background:#c62828}.queued{background:#9e9e9e}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{padding:2px 6px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:220px}
th{cursor:pointer;background:#f3f5f7;position:sticky;top:0}
tr.sel{background:#fff3c4}
tr[data-job]{cursor:pointer}
.st{display:inline-block;width:8px;height:8px;border-radius:4px;margin-right:4px}
.controls{display:flex;gap:8px;margin-bottom:6px;align-items:center;flex-wrap:wrap}
input,select,button{font:inherit}
svg text{font:10px system-ui,sans-serif;fill:#444}
.muted{color:#777}
#timeline,#resources{display:none}
a{color:#1565c0}
</style></head>
<body data-page-start="">
<header><h1>ranksweep</h1><select id="sweep"></select><span id="progress">loading…</span>
<div class="bar" id="bar"></div><span id="eta" class="muted"></span><span id="live" class="muted">connecting…</span></header>
<main>
<section style="grid-column:1/3"><h2>Jobs</h2>
<div class="controls"><input id="q" placeholder="filter: id, label, worker" size="28">
<select id="state"><option value="">all states</option><option>queued</option><option>running</option><option>done</option><option>failed</option></select>
<button id="prev">◀</button><span id="pageinfo"></span><button id="next">▶</button></div>
<div style="max-height:360px;overflow:auto"><table id="jobs"><thead><tr id="jobhead"></tr></thead><tbody></tbody></table></div></section>
<section><h2>Pareto: parameters against Dice</h2><svg id="pareto" width="100%" viewBox="0 0 460 300"></svg></section>
<section><h2>Curve of <span id="curvejob" class="muted">(click a job)</span></h2><svg id="curve" width="100%" viewBox="0 0 460 300"></svg></section>
<section><h2>Parallel coordinates over the grid's axes</h2><svg id="parallel" width="100%" viewBox="0 0 460 300"></svg><div id="parinfo" class="muted"></div></section>
<section><h2>Workers</h2><table id="workers"><thead><tr><th>worker</th><th>host</th><th>slots</th><th>state</th><th>running</th><th>seen</th></tr></thead><tbody></tbody></table>
<h2 style="margin-top:10px">Targeted searches</h2><div id="brackets" class="muted">none in this sweep</div></section>
</main>
<ol id="timeline"></ol><ul id="resources"></ul>
<script>
"use strict";
const $=s=>document.querySelector(s);
const esc=s=>String(s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const colors={done:"#2e7d32",running:"#1565c0",failed:"#c62828",queued:"#9e9e9e"};
const palette=["#1565c0","#e65100","#2e7d32","#6a1b9a","#c62828","#00838f"];
document.body.dataset.pageStart=String(Date.now());
let sweep=0,page=0,size=50,sort="seq",dir="asc",selected=null,summary=null,lastDone=-1,lastPar=0,source=null,paretoCount=0;
const cols=[["seq","#"],["id","job"],["kind","kind"],["state","state"],["attempt","att."],["worker","worker"],["epoch","epoch"],["dice","Dice"],["parameters","params"],["flops","FLOPs"],["recovery","kept"],["seconds","s"],[null,"models"]];
const fmt=v=>v==null?"":typeof v==="number"?(Math.abs(v)>=1e4?v.toExponential(2):Number.isInteger(v)?String(v):v.toFixed(4)):esc(v);
async function get(path){const r=await fetch(path,{credentials:"same-origin"});if(!r.ok)throw new Error(path+": "+r.status);return r.json();}
function q(extra){return "sweep="+sweep+(extra?"&"+extra:"");}
function head(){ $("#jobhead").innerHTML=cols.map(([k,t])=>`<th data-sort="${k||""}">${t}${k===sort?(dir==="asc"?" ▲":" ▼"):""}</th>`).join("");
  document.querySelectorAll("#jobhead th").forEach(th=>th.onclick=()=>{const k=th.dataset.sort;if(!k)return;if(sort===k)dir=dir==="asc"?"desc":"asc";else{sort=k;dir="asc";}page=0;head();loadJobs();});}
async function loadJobs(){
  const p=new URLSearchParams({page,size,sort,dir});const st=$("#state").value,qq=$("#q").value;if(st)p.set("state",st);if(qq)p.set("q",qq);
  const d=await get("/api/jobs?"+q(p.toString()));
  $("#pageinfo").textContent=`${d.matched?page*size+1:0}–${Math.min(d.matched,(page+1)*size)} of ${d.matched}`+(d.matched!==d.total?` (of ${d.total})`:"");
  $("#jobs tbody").innerHTML=d.rows.map(r=>{const links=Object.entries(r.artifacts).sort().map(([n,h])=>`<a href="/artifacts/${h}?${q("name="+encodeURIComponent(n))}" download>${esc(n)}</a>`+(n=="model.safetensors"?` <a href="/artifacts/${h}/onnx?${q("name="+encodeURIComponent(n))}" download>model.onnx</a>`:"")).join(" ");
    return `<tr data-job="${esc(r.id)}" data-state="${r.state}" class="${r.id===selected?"sel":""}"><td></td><td title="${esc(r.id)}">${esc(r.id)}</td><td>${esc(r.label)}</td><td><span class="st ${r.state}"></span>${r.state}</td><td>${r.attempt}</td><td>${fmt(r.worker)}</td><td>${r.epoch!=null?r.epoch+(r.epochs?"/"+r.epochs:""):""}</td><td>${fmt(r.dice)}</td><td>${fmt(r.parameters)}</td><td>${fmt(r.flops)}</td><td>${r.recovery!=null?(r.recovery*100).toFixed(1)+"%":""}</td><td>${r.seconds!=null?r.seconds.toFixed(1):""}</td><td>${links}</td></tr>`;}).join("");
  document.querySelectorAll("#jobs tbody tr").forEach((tr,i)=>{tr.firstChild.textContent=page*size+i+1;tr.onclick=()=>{selected=tr.dataset.job;location.hash="job="+encodeURIComponent(selected);loadCurve();loadJobs();};});
  return d;
}
function axis(svg,x0,y0,w,h,xs,ys,xl,yl){let s="";
  for(const t of xs.ticks)s+=`<line x1="${xs(t)}" x2="${xs(t)}" y1="${y0}" y2="${y0+h}" stroke="#eee"/><text x="${xs(t)}" y="${y0+h+12}" text-anchor="middle">${xs.fmt(t)}</text>`;
  for(const t of ys.ticks)s+=`<line x1="${x0}" x2="${x0+w}" y1="${ys(t)}" y2="${ys(t)}" stroke="#eee"/><text x="${x0-4}" y="${ys(t)+3}" text-anchor="end">${ys.fmt(t)}</text>`;
  s+=`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#bbb"/><text x="${x0+w/2}" y="${y0+h+26}" text-anchor="middle">${esc(xl)}</text><text transform="translate(12 ${y0+h/2}) rotate(-90)" text-anchor="middle">${esc(yl)}</text>`;return s;}
function scale(lo,hi,a,b,log){ if(!(hi>lo)){hi=lo+1;lo=lo-1;} const L=log&&lo>0, f=L?Math.log10:(v=>v), A=f(lo),B=f(hi);
  const s=v=>a+(f(v)-A)/(B-A)*(b-a); const n=5; s.ticks=[];for(let i=0;i<=n;i++){const t=A+(B-A)*i/n;s.ticks.push(L?Math.pow(10,t):t);}
  s.fmt=v=>Math.abs(v)>=1e4||(Math.abs(v)<1e-2&&v!==0)?v.toExponential(1):(+v.toFixed(3)).toString();return s;}
async function loadPareto(){
  const d=await get("/api/pareto?"+(summary&&summary.compare?"sweep=all":q()));const pts=d.points;paretoCount=pts.length;const svg=$("#pareto");
  if(!pts.length){svg.innerHTML=`<text x="230" y="150" text-anchor="middle">no finished train or compress job yet</text>`;return;}
  const xs=scale(Math.min(...pts.map(p=>p.parameters))*0.9,Math.max(...pts.map(p=>p.parameters))*1.1,50,440,true);
  const ys=scale(Math.min(...pts.map(p=>p.dice))-0.02,Math.min(1,Math.max(...pts.map(p=>p.dice))+0.02),260,20,false);
  let s=axis(svg,50,20,390,240,xs,ys,"parameters (log)","test Dice");
  const front=pts.filter(p=>p.front).sort((a,b)=>a.parameters-b.parameters);
  if(front.length>1)s+=`<polyline fill="none" stroke="#e65100" stroke-width="1.5" points="${front.map(p=>xs(p.parameters)+","+ys(p.dice)).join(" ")}"/>`;
  for(const p of pts)s+=`<circle class="pt" data-job="${esc(p.job)}" cx="${xs(p.parameters)}" cy="${ys(p.dice)}" r="${p.front?4.5:3.5}" fill="${p.kind==="train"?"#222":palette[(p.sweep||0)%palette.length]}" fill-opacity="0.8"><title>${esc(p.job)} ${esc(p.label)}: Dice ${p.dice.toFixed(4)}, ${p.parameters} params</title></circle>`;
  svg.innerHTML=s;
  svg.querySelectorAll("circle.pt").forEach(c=>c.onclick=()=>{selected=c.dataset.job;loadCurve();});
}
async function loadCurve(){
  if(!selected)return;const j=await get("/api/job?"+q("id="+encodeURIComponent(selected)));const svg=$("#curve");
  $("#curvejob").textContent=j.id+" ("+j.state+")";const pts=j.curve||[];
  if(!pts.length){svg.innerHTML=`<text x="230" y="150" text-anchor="middle">no epochs reported yet</text>`;svg.dataset.points="0";return;}
  const keys=[...new Set(pts.flatMap(p=>Object.keys(p.metrics)))].filter(k=>k!=="seconds"&&k!=="learning_rate").sort();
  const vals=pts.flatMap(p=>keys.map(k=>p.metrics[k]).filter(v=>v!=null));
  const xs=scale(Math.min(...pts.map(p=>p.epoch)),Math.max(...pts.map(p=>p.epoch)),50,440,false),ys=scale(Math.min(...vals),Math.max(...vals),260,20,false);
  let s=axis(svg,50,20,390,240,xs,ys,"epoch","loss / Dice");
  keys.forEach((k,i)=>{const c=palette[i%palette.length];const ps=pts.filter(p=>p.metrics[k]!=null);
    s+=`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${ps.map(p=>xs(p.epoch)+","+ys(p.metrics[k])).join(" ")}"/>`;
    s+=ps.map(p=>`<circle class="ep" data-epoch="${p.epoch}" data-metric="${esc(k)}" cx="${xs(p.epoch)}" cy="${ys(p.metrics[k])}" r="2.5" fill="${c}"/>`).join("");
    s+=`<text x="${60+i*90}" y="14" fill="${c}" style="fill:${c}">■ ${esc(k)}</text>`;});
  svg.innerHTML=s;svg.dataset.points=String(pts.length);
}
async function loadParallel(){
  const d=await get("/api/parallel?"+q());const svg=$("#parallel");const ax=d.axes,lines=d.lines;
  $("#parinfo").textContent=ax.length?`${lines.length} of ${d.of} jobs`:"";
  if(!ax.length||!lines.length){svg.innerHTML=`<text x="230" y="150" text-anchor="middle">no grid axes vary in this sweep</text>`;return;}
  const X=i=>40+i*(390/Math.max(1,ax.length-1));let s="";const scales=ax.map(a=>{const vs=lines.map(l=>l.values[a]).filter(v=>v!=null);
    if(vs.every(v=>typeof v==="number")){const lo=Math.min(...vs),hi=Math.max(...vs);return v=>v==null?null:260-(hi>lo?(v-lo)/(hi-lo):0.5)*230;}
    const cats=[...new Set(vs.map(String))].sort();return v=>v==null?null:260-(cats.length>1?cats.indexOf(String(v))/(cats.length-1):0.5)*230;});
  for(const l of lines){const p=ax.map((a,i)=>{const y=scales[i](l.values[a]);return y==null?null:X(i)+","+y;}).filter(v=>v);
    s+=`<polyline fill="none" stroke="${colors[l.state]||"#999"}" stroke-opacity="0.35" points="${p.join(" ")}"/>`;}
  ax.forEach((a,i)=>{s+=`<line x1="${X(i)}" x2="${X(i)}" y1="30" y2="260" stroke="#555"/><text x="${X(i)}" y="${i%2?285:275}" text-anchor="middle">${esc(a.split(".").pop())}</text>`;});
  svg.innerHTML=s;
}
function renderSummary(s){
  summary=s;const j=s.jobs,done=j.done||0;$("#progress").textContent=`${done} of ${s.total} done · ${j.running||0} running · ${j.queued||0} queued · ${j.failed||0} failed`;
  $("#bar").innerHTML=["done","running","failed","queued"].map(k=>`<span class="${k}" style="width:${s.total?100*(j[k]||0)/s.total:0}%"></span>`).join("");
  $("#eta").textContent=s.complete?"complete":s.etaSeconds!=null?`ETA ${Math.round(s.etaSeconds)} s at ${s.rate.toFixed(2)} jobs/s`:"";
  $("#workers tbody").innerHTML=s.workers.map(w=>`<tr><td>${esc(w.id)}</td><td>${esc(w.host)}</td><td>${w.slots}</td><td>${esc(w.state)}</td><td>${w.running.map(r=>esc(r.job)+(r.epoch!=null?` (epoch ${r.epoch}${r.epochs?"/"+r.epochs:""})`:"")).join(", ")||"idle"}</td><td>${w.seenAgo}s ago</td></tr>`).join("");
  if(s.brackets&&s.brackets.length)$("#brackets").innerHTML=s.brackets.map(b=>{const n=b.candidates.length,W=400;
    const px=i=>20+(n>1?i/(n-1):0.5)*W;let g=`<svg width="100%" viewBox="0 0 440 50"><line x1="20" x2="${20+W}" y1="25" y2="25" stroke="#bbb"/>`;
    b.candidates.forEach((c,i)=>{const p=b.probes.find(p=>p.value===c);const col=!p?"#ddd":p.state!=="done"?colors[p.state]||"#999":(p.recovery!=null&&p.recovery>=b.target?"#2e7d32":"#c62828");
      g+=`<circle cx="${px(i)}" cy="25" r="5" fill="${col}"><title>${c}${p&&p.recovery!=null?": "+(p.recovery*100).toFixed(2)+"%":""}</title></circle><text x="${px(i)}" y="45" text-anchor="middle">${c}</text>`;});
    return `<div>${esc(b.sentence)}</div>`+g+"</svg>";}).join("");
  else if(s.searches.length)$("#brackets").textContent=s.searches.join(" ");
}
async function update(s){
  renderSummary(s);const done=s.jobs.done||0;
  const d=await loadJobs();
  if(done!==lastDone){await loadPareto();if(Date.now()-lastPar>2000||s.complete){lastPar=Date.now();await loadParallel();}}
  if(selected)await loadCurve();
  lastDone=done;
  const li=document.createElement("li");li.dataset.t=String(Date.now());li.dataset.done=String(done);li.dataset.running=String(s.jobs.running||0);
  li.dataset.pareto=String(paretoCount);li.dataset.rowsDone=String(d.rows.filter(r=>r.state==="done").length);li.dataset.curve=$("#curve").dataset.points||"0";
  const entries=[...performance.getEntriesByType("navigation"),...performance.getEntriesByType("resource")];
  li.dataset.ms=String(Math.round(performance.now()));li.dataset.bytes=String(entries.reduce((a,e)=>a+(e.transferSize||0),0));
  $("#timeline").appendChild(li);
  $("#resources").innerHTML=[location.origin,...performance.getEntriesByType("resource").map(e=>new URL(e.name).origin)].filter((v,i,a)=>a.indexOf(v)===i).map(o=>`<li>${esc(o)}</li>`).join("");
}
let busy=false,pending=null;
async function onUpdate(s){pending=s;if(busy)return;busy=true;try{while(pending){const x=pending;pending=null;await update(x);}}catch(e){$("#live").textContent=String(e);}finally{busy=false;}}
function connect(){
  if(source)source.close();source=new EventSource("/api/events?"+q());
  source.addEventListener("update",e=>{$("#live").textContent="live";onUpdate(JSON.parse(e.data));});
  source.onerror=()=>{$("#live").textContent=summary&&summary.complete?"sweep complete":"reconnecting…";};
}
async function init(){
  const m=/job=([^&]+)/.exec(location.hash);if(m)selected=decodeURIComponent(m[1]);
  const sw=/sweep=(\d+)/.exec(location.hash);if(sw)sweep=+sw[1];
  const list=await get("/api/sweeps");$("#sweep").innerHTML=list.map(s=>`<option value="${s.index}">${esc(s.name)}</option>`).join("")+(list.length>1?`<option value="all">compare all (Pareto)</option>`:"");
  $("#sweep").value=String(sweep);$("#sweep").onchange=()=>{const v=$("#sweep").value;if(v==="all"){if(summary)summary.compare=true;loadPareto();return;}sweep=+v;page=0;lastDone=-1;connect();};
  head();$("#q").oninput=()=>{page=0;loadJobs();};$("#state").onchange=()=>{page=0;loadJobs();};
  $("#prev").onclick=()=>{if(page>0){page--;loadJobs();}};$("#next").onclick=()=>{page++;loadJobs().then(d=>{if(page*size>=d.matched&&page>0){page--;loadJobs();}});};
  connect();
}
init().catch(e=>{$("#live").textContent=String(e);});
</script></body></html>
"""#
}
