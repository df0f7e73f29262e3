{#
  DuckDB's threads for dbt on the lake. Several steps of one host work the lake at once, each DuckDB with
  as many threads as the host has cores unless told otherwise; the dbt step hands over its share of the
  cores (flightdeck/cpu_share.py) as FLIGHTDECK_DUCKDB_THREADS, at dbt's start and, through its gate,
  again before each model and at the publish (internals/dbt_launcher.py, gate_callback). Run at the
  start of the invocation (on-run-start), as a pre-hook of every model, and by the publish: between
  statements, the only time DuckDB's threads may change. Read only when executing, so the value never
  ties the parse to a run.
#}
{% macro share_host_cores() %}
  {%- if execute and target.name == 'lake' and env_var('FLIGHTDECK_DUCKDB_THREADS', '') -%}
    set threads = {{ env_var('FLIGHTDECK_DUCKDB_THREADS') | int }}
  {%- endif -%}
{% endmacro %}
