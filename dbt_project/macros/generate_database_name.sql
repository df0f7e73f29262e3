{#
  On the DuckLake (target `lake`: an in-memory DuckDB with the lake attached, profiles.yml) every model is
  built in the dbt process's own in-memory database, `memory`: a build's staging views and its marts'
  audit tables are its own, so builds of different windows run side by side (two processes replacing one
  view or table of the lake would conflict at commit), and nothing of a build reaches the lake but its
  publish (publish_marts.sql), which holds the lake's publish lock. Sources stay in the lake. On the
  DuckDB file every model is in the warehouse, as dbt does by default.
#}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
  {%- if target.name == 'lake' -%}
    memory
  {%- elif custom_database_name is none -%}
    {{ target.database }}
  {%- else -%}
    {{ custom_database_name | trim }}
  {%- endif -%}
{%- endmacro %}
