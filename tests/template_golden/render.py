"""Regenerates the *.expected files with Jinja2 + PyYAML set up as Ansible's template
module renders (trim_blocks=True, lstrip_blocks=False, keep_trailing_newline=True,
None printed as empty) and Ansible's to_json/to_nice_json/to_yaml/to_nice_yaml/split.

    cd tests/template_golden && python3 render.py
"""
import glob
import json

import jinja2
import yaml


def to_yaml(a, **kw):
    return yaml.dump(a, allow_unicode=True, default_flow_style=kw.pop('default_flow_style', None), **kw)


def to_nice_yaml(a, indent=4, **kw):
    return yaml.dump(a, indent=indent, allow_unicode=True, default_flow_style=False, **kw)


def to_nice_json(a, indent=4, sort_keys=True, **kw):
    return json.dumps(a, indent=indent, sort_keys=sort_keys, separators=(',', ': '), **kw)


env = jinja2.Environment(trim_blocks=True, lstrip_blocks=False, keep_trailing_newline=True,
                         undefined=jinja2.StrictUndefined,
                         finalize=lambda x: '' if x is None else x)
env.filters.update(split=lambda s, sep=None, maxsplit=-1: s.split(sep, maxsplit),
                   to_json=lambda a, **kw: json.dumps(a, **kw), to_nice_json=to_nice_json,
                   to_yaml=to_yaml, to_nice_yaml=to_nice_yaml)
variables = json.load(open('vars.json'))
for name in sorted(glob.glob('t*.j2')):
    out = env.from_string(open(name).read()).render(**variables)
    open(name[:-3] + '.expected', 'w').write(out)
