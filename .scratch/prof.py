import json,sys,collections
p=json.load(open(sys.argv[1]))
nodes={n['id']:n for n in p['nodes']}
dt=collections.Counter()
samples=p['samples']; deltas=p['timeDeltas']
for s,d in zip(samples,deltas): dt[s]+=d
total=sum(dt.values())
byfn=collections.Counter(); byfile=collections.Counter()
for nid,t in dt.items():
    cf=nodes[nid]['callFrame']
    name=cf['functionName'] or '(anon)'
    url=cf['url'].split('/node_modules/')[-1].replace('file:///work/main/','')
    byfn[f"{name} {url}:{cf['lineNumber']}"]+=t
    byfile[url or name]+=t
print('total ms',total/1000)
for k,v in byfn.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 25): print(f"{v/total*100:5.1f}% {k}")
print('--- by file')
for k,v in byfile.most_common(15): print(f"{v/total*100:5.1f}% {k}")
