{#
  The daily partition window, the vars min_date / max_date (inclusive ISO dates; see dbt_project.yml).
  in_partition_window(col): a predicate for WHERE clauses; true for every row when no window is given (empty or null).
  The marts are built for the window as <name>__audit and published by publish_marts (publish_marts.sql).
#}
{% macro in_partition_window(column) -%}
  {#- Read only when executing: a var read while dbt parses ties the calling file to the window's
      environment variables, and every run with a new window would re-parse it. -#}
  {%- if execute and var('min_date') and var('max_date') -%}
    {{ column }} between date '{{ var("min_date") }}' and date '{{ var("max_date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
