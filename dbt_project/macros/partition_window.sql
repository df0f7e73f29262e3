{#
  The daily partition window, the vars min_date / max_date (inclusive ISO dates; see dbt_project.yml).
  in_partition_window(col): a predicate for WHERE clauses; true for every row when no window is given (empty or null).
  The marts are built for the window as <name>__audit and published by publish_marts (publish_marts.sql).
#}
{% macro in_partition_window(column) -%}
  {%- if var('min_date') and var('max_date') -%}
    {{ column }} between date '{{ var("min_date") }}' and date '{{ var("max_date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
