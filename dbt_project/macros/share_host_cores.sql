{#
  Run at the start of every invocation (on-run-start). On the lake several steps of one host work at
  once, each DuckDB with as many threads as the host has cores unless told otherwise; the dbt step hands
  over its share of the cores (flightdeck/cpu_share.py) as FLIGHTDECK_DUCKDB_THREADS. Read only when
  executing, so the value never ties the parse to a run.
#}
{% macro share_host_cores() %}
  {%- if execute and target.name == 'lake' and env_var('FLIGHTDECK_DUCKDB_THREADS', '') -%}
    set threads = {{ env_var('FLIGHTDECK_DUCKDB_THREADS') | int }}
  {%- endif -%}
{% endmacro %}
