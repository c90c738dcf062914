import json,sys,collections
p=json.load(open(sys.argv[1]))
nodes={n['id']:n for n in p['nodes']}
parent={}
for n in p['nodes']:
    for c in n.get('children',[]): parent[c]=n['id']
self_t=collections.Counter()
for s,d in zip(p['samples'],p['timeDeltas']): self_t[s]+=d
total=sum(self_t.values())
idle=sum(t for nid,t in self_t.items() if nodes[nid]['callFrame']['functionName'] in ('(idle)',))
incl=collections.Counter()
for nid,t in self_t.items():
    seen=set(); cur=nid
    while cur is not None:
        cf=nodes[cur]['callFrame']
        key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/node_modules/')[-1].replace('file:///work/main/','')}:{cf['lineNumber']}"
        if key not in seen: incl[key]+=t; seen.add(key)
        cur=parent.get(cur)
busy=total-idle
print('busy ms',busy/1000)
pat=sys.argv[2] if len(sys.argv)>2 else ''
for k,v in incl.most_common(400):
    if pat in k: print(f"{v/busy*100:5.1f}% {v/1000:8.1f}ms {k}")
