import json,sys,collections
p=json.load(open(sys.argv[1])); target=sys.argv[2]
nodes={n['id']:n for n in p['nodes']}
parent={}
for n in p['nodes']:
    for c in n.get('children',[]): parent[c]=n['id']
self_t=collections.Counter()
for s,d in zip(p['samples'],p['timeDeltas']): self_t[s]+=d
paths=collections.Counter()
for nid,t in self_t.items():
    if nodes[nid]['callFrame']['functionName']!=target: continue
    chain=[];cur=parent.get(nid)
    while cur is not None and len(chain)<8:
        cf=nodes[cur]['callFrame']; chain.append(f"{cf['functionName'] or '(anon)'}@{cf['url'].split('/')[-1]}:{cf['lineNumber']}"); cur=parent.get(cur)
    paths[' < '.join(chain)]+=t
for k,v in paths.most_common(5): print(v/1000,'ms',k)
