{#
  Run first at the start of every invocation (on-run-start). On the lake dbt's database is an in-memory
  DuckDB (profiles.yml), which spills to ./.tmp by default under fixed file names: two dbt processes (or
  dbt and a load) spilling in one working directory at once write over each other's blocks and crash.
  Each invocation spills to a folder of its own, which DuckDB creates when it first spills and removes
  when dbt ends (flightdeck/lake.py does the same for every other connection to the lake). The DuckDB
  file spills beside itself (<warehouse>.tmp), with one writer at a time.
#}
{% macro use_own_temp_directory() %}
  {%- if execute and target.name == 'lake' -%}
    set temp_directory = '{{ env_var("TMPDIR", "/tmp") | replace("'", "''") }}/flightdeck-dbt-{{ invocation_id }}'
  {%- endif -%}
{% endmacro %}
